"""Payments API: tenant-scoped payments (phones masked), initiation, and the provider's callback.

The callback (`POST /api/payments/callback/`) is how the payment provider settles a payment. It
has no user authentication; the provider proves itself by signing the exact request body:

    X-Signature: hex(HMAC-SHA256(key=<the tenant's payment_secret>, msg=<raw body bytes>))

Body (JSON object): `reference` (the payment's provider_reference), `status` ("completed" or
"failed"), `amount` (decimal string or number, must equal the payment's amount), optional
`currency` (must equal the payment's currency), optional `reason` (why it failed).

Order of checks, and why:
1. No/garbled `X-Signature` → 401. Cheap, and reveals nothing.
2. Body not a JSON object with a string `reference` → 400. The secret belongs to the tenant that
   owns the reference, so the reference must be read before a signature can be checked at all.
3. Unknown reference → 404, after doing the same HMAC work as for a known one. This is the one
   thing an unsigned caller can learn: whether a reference exists. It cannot be hidden while the
   key is found from the reference *and* unknown references must answer 404 (no secret exists
   that such a signature could check out against). We accept it: references are 64-bit random
   tokens (not guessable or enumerable), the 404 carries nothing else, calls are throttled per
   address, and every call is logged with its reference.
4. Signature mismatch (hmac.compare_digest, constant time) → 401.
5. Only now is anything about the payment revealed or changed: invalid fields → 400, amount or
   currency mismatch → 409, contradicting an earlier settlement → 409, a repeat of an applied
   callback → 200 with the same result and `duplicate: true`, nothing done twice.
Every call, whatever the outcome, is logged on `payments.callback` with its reference.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import IdFilter, StrictSerializer, UTCDateTimeFilter
from config.clientip import client_ip
from config.throttling import CallbackRateThrottle
from hotspot.models import Package
from hotspot.selectors import package_list

from . import selectors, services
from .models import Payment

logger = logging.getLogger("payments.callback")
CALLBACK_DOC = __doc__

MAX_CALLBACK_BYTES = 16 * 1024
SIGNATURE_HEADER = "X-Signature"
_DUMMY_SECRET = b"no-such-reference: same HMAC work as for a known one"


class PaymentSerializer(serializers.ModelSerializer):
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)
    package = serializers.PrimaryKeyRelatedField(read_only=True)
    masked_phone = serializers.CharField(read_only=True, help_text="The payer's phone, masked.")

    class Meta:
        model = Payment
        fields = [
            "id",
            "tenant",
            "package",
            "masked_phone",
            "amount",
            "currency",
            "provider_reference",
            "status",
            "failure_reason",
            "completed_at",
            "failed_at",
            "created_at",
        ]
        read_only_fields = fields


class PaymentInitiateSerializer(StrictSerializer):
    package = serializers.PrimaryKeyRelatedField(queryset=Package.objects.none())
    phone = serializers.CharField(max_length=20, help_text="The payer's phone, e.g. 254712345678.")
    provider_reference = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="The provider's reference if it already gave one; default: generated.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["package"].queryset = package_list(user=request.user if request else None)


class PaymentFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Payment.Status.choices)
    package = IdFilter(field_name="package_id")
    tenant = IdFilter(field_name="tenant_id")
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Payment
        fields = ["status", "package", "tenant", "created_after", "created_before"]


@extend_schema_view(
    list=extend_schema(summary="Payments of your tenant (system admins: all), newest first"),
    retrieve=extend_schema(summary="One payment (404 if it is not yours to see)"),
    create=extend_schema(
        summary="Initiate a payment for a package (tenant members)",
        request=PaymentInitiateSerializer,
        responses={201: PaymentSerializer},
    ),
)
class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    search_fields = ["provider_reference"]
    ordering_fields = ["created_at", "amount", "status"]
    lookup_value_regex = "[0-9]+"  # so /api/payments/callback/ is never taken for an id

    def get_queryset(self) -> Any:
        return selectors.payment_list(user=self.request.user)

    def create(self, request: Request) -> Response:
        serializer = PaymentInitiateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        package = data["package"]
        payment = services.payment_initiate(
            tenant=package.tenant,
            package=package,
            phone=data["phone"],
            provider_reference=data["provider_reference"],
            by=request.user,
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


# --- The provider's callback -------------------------------------------------------------------


class CallbackSerializer(serializers.Serializer):
    """The callback body the provider signs and sends."""

    reference = serializers.CharField(max_length=64, help_text="The payment's provider_reference.")
    status = serializers.ChoiceField(choices=["completed", "failed"])
    amount = serializers.DecimalField(
        max_digits=None, decimal_places=None, help_text="Must equal the payment's amount."
    )
    currency = serializers.CharField(
        max_length=3, required=False, help_text="If sent, must equal the payment's currency."
    )
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="Why it failed."
    )


class CallbackResultSerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    duplicate = serializers.BooleanField(
        help_text="True: this callback was already applied; nothing was done this time."
    )


class CallbackError(exceptions.APIException):
    """An answer to the provider in the API's error shape, with its own status and code."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.status_code = status_code
        super().__init__(message, code)


def signature_for(secret: str | bytes, body: bytes) -> str:
    """The X-Signature value for `body` (what the provider computes; also used by tests)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _given_signature(request: Request) -> str:
    given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
    if given.startswith("sha256="):
        given = given[len("sha256=") :]
    if not given:
        raise CallbackError(401, "signature_missing", f"The {SIGNATURE_HEADER} header is missing.")
    if len(given) != 64 or any(c not in "0123456789abcdef" for c in given):
        raise CallbackError(
            401, "signature_invalid", f"{SIGNATURE_HEADER} must be a hex HMAC-SHA256."
        )
    return given


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_constant=_reject_constant)  # no NaN/Infinity
    except (ValueError, RecursionError) as exc:
        raise CallbackError(400, "malformed", "The body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise CallbackError(400, "malformed", "The body must be a JSON object.")
    reference = body.get("reference")
    if not isinstance(reference, str) or not reference.strip() or len(reference) > 64:
        raise CallbackError(400, "malformed", "`reference` must be a non-empty string.")
    return body


_CALLBACK_ERRORS = {
    code: OpenApiResponse(description=text)
    for code, text in {
        400: "Malformed body or invalid fields (`error.fields`); nothing changed.",
        401: "Missing, garbled or wrong X-Signature; nothing changed.",
        404: "No payment has this reference.",
        409: "Amount/currency mismatch, or it contradicts how the payment was already settled.",
        413: "The body is too large.",
        429: "Too many calls from this address; see Retry-After.",
    }.items()
}


class PaymentCallbackView(APIView):
    """Settle a payment; idempotent (see the module docstring for the order of checks)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [CallbackRateThrottle]

    @extend_schema(
        tags=["payments"],
        summary="The payment provider's callback (HMAC-signed, no user auth)",
        description=CALLBACK_DOC,
        auth=[],
        parameters=[
            OpenApiParameter(
                SIGNATURE_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="hex(HMAC-SHA256(tenant payment secret, raw request body))",
            )
        ],
        request=CallbackSerializer,
        responses={200: CallbackResultSerializer, **_CALLBACK_ERRORS},
        examples=[
            OpenApiExample(
                "completed",
                value={
                    "reference": "PAY0123456789ABCDEF",
                    "status": "completed",
                    "amount": "50.00",
                    "currency": "KES",
                },
                request_only=True,
            ),
            OpenApiExample(
                "failed",
                value={
                    "reference": "PAY0123456789ABCDEF",
                    "status": "failed",
                    "amount": "50.00",
                    "reason": "Insufficient funds",
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = _given_signature(request)
        content_length = request.META.get("CONTENT_LENGTH") or "0"
        if not content_length.isdigit() or int(content_length) > MAX_CALLBACK_BYTES:
            raise CallbackError(413, "too_large", "The body is too large.")
        try:
            raw = request.body
        except RequestDataTooBig as exc:
            raise CallbackError(413, "too_large", "The body is too large.") from exc
        body = _parse_body(raw)
        reference = body["reference"]
        request.callback_reference = reference
        payment = (
            Payment.objects.select_related("tenant").filter(provider_reference=reference).first()
        )
        secret = payment.tenant.payment_secret.encode() if payment else _DUMMY_SECRET
        expected = signature_for(secret, raw)
        if payment is None:
            raise CallbackError(404, "unknown_reference", "No payment has this reference.")
        if not hmac.compare_digest(expected, given):
            raise CallbackError(401, "signature_mismatch", "The signature does not match the body.")
        serializer = CallbackSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        currency = data.get("currency")
        if currency is not None and currency.upper() != payment.currency:
            raise services.AmountMismatch(
                f"Currency {currency} does not match the expected {payment.currency}."
            )
        result = services.payment_record_callback(
            provider_reference=reference,
            succeeded=data["status"] == "completed",
            amount=data["amount"],
            raw=body,
            reason=data["reason"],
            tenant=payment.tenant,
        )
        settled = result.payment
        return Response(
            {
                "reference": settled.provider_reference,
                "status": settled.status,
                "amount": f"{settled.amount:.2f}",
                "currency": settled.currency,
                "duplicate": result.duplicate,
            }
        )

    def handle_exception(self, exc: Exception) -> Response:
        try:
            return super().handle_exception(exc)
        except Exception:
            reference = getattr(self.request, "callback_reference", None) or "-"
            logger.exception("callback ref=%s http=500 outcome=server_error", reference)
            raise

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """Log every call with its provider reference and outcome."""
        response = super().finalize_response(request, response, *args, **kwargs)
        reference = getattr(request, "callback_reference", None) or "-"
        data = response.data if isinstance(response.data, dict) else {}
        outcome = data.get("error", {}).get("code") if "error" in data else data.get("status")
        level = logging.INFO if response.status_code < 400 else logging.WARNING
        logger.log(
            level,
            "callback ref=%s http=%s outcome=%s%s from=%s",
            reference,
            response.status_code,
            outcome,
            " duplicate" if data.get("duplicate") else "",
            client_ip(request),
        )
        return response
