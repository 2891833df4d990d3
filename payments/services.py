"""Payments: initiation, and settling them from the provider's callback (idempotently)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.utils import clean_phone
from config.errors import DomainError, InvalidTransition, NotFound, PermissionDenied
from config.metrics import STK_PUSHES
from hotspot.models import HotspotUser, Package
from hotspot.services import hotspot_user_provision_for_payment
from tenants.models import Tenant

from . import signals
from .models import Payment

logger = logging.getLogger("payments.callback")


class AmountMismatch(DomainError):
    code = "amount_mismatch"


@dataclass(frozen=True)
class CallbackResult:
    payment: Payment
    hotspot_user: HotspotUser | None
    duplicate: bool  # True: this reference was already settled the same way; nothing was done


@transaction.atomic
def payment_initiate(
    *,
    tenant: Tenant,
    package: Package,
    phone: str,
    by: User | None = None,
    provider_reference: str = "",
) -> Payment:
    """A customer starts paying for a package: a pending payment at the package's price."""
    if by is not None and not by.is_system_admin and by.tenant_id != tenant.pk:
        raise PermissionDenied("That belongs to another tenant.")
    if tenant.status != Tenant.Status.ACTIVE:
        raise InvalidTransition(f"{tenant.name} is not active.")
    if package.tenant_id != tenant.pk:
        raise ValidationError({"package": "That package belongs to another tenant."})
    if not package.is_active:
        raise ValidationError({"package": "That package is not on sale."})
    if package.price <= 0:
        raise ValidationError({"package": "That package is free; there is nothing to pay."})
    phone = clean_phone(phone, required=True)
    reference = (provider_reference or "").strip() or "PAY" + secrets.token_hex(8).upper()
    max_length = Payment._meta.get_field("provider_reference").max_length
    if len(reference) > max_length:
        raise ValidationError(
            {"provider_reference": f"A provider reference has at most {max_length} characters."}
        )
    if Payment.objects.filter(provider_reference=reference).exists():
        raise ValidationError({"provider_reference": "That provider reference is already used."})
    payment = Payment.objects.create(
        tenant=tenant,
        package=package,
        phone=phone,
        amount=package.price,
        currency=package.currency,
        provider_reference=reference,
    )
    signals.payment_initiated.send(sender=Payment, payment=payment, by=by)
    return payment


def _locked_pending(payment: Payment, can: str) -> Payment:
    """The payment's row, locked, if it is still pending; else InvalidTransition."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.status != Payment.Status.PENDING:
        raise InvalidTransition(
            f"Payment {payment.provider_reference} is already {payment.status}; "
            f"only a pending payment can {can}."
        )
    return payment


@transaction.atomic
def payment_complete(
    *, payment: Payment, by: User | None = None, raw: dict[str, Any] | None = None
) -> tuple[Payment, HotspotUser]:
    """Pending → completed, provisioning its hotspot user in the same transaction."""
    payment = _locked_pending(payment, "be completed")
    payment.status = Payment.Status.COMPLETED
    payment.completed_at = timezone.now()
    if raw is not None:
        payment.raw_callback = raw
    payment.save(update_fields=["status", "completed_at", "raw_callback", "updated_at"])
    hotspot_user = hotspot_user_provision_for_payment(payment=payment)
    if payment.provider == Payment.Provider.DARAJA:  # the customer paid from their phone
        from .sms import sms_queue_credentials

        sms_queue_credentials(payment=payment, hotspot_user=hotspot_user)
    signals.payment_completed.send(
        sender=Payment, payment=payment, hotspot_user=hotspot_user, by=by
    )
    return payment, hotspot_user


@transaction.atomic
def payment_fail(
    *, payment: Payment, reason: str, by: User | None = None, raw: dict[str, Any] | None = None
) -> Payment:
    payment = _locked_pending(payment, "fail")
    payment.status = Payment.Status.FAILED
    payment.failure_reason = (reason or "Declined by the provider.")[:500]
    payment.failed_at = timezone.now()
    if raw is not None:
        payment.raw_callback = raw
    payment.save(
        update_fields=["status", "failure_reason", "failed_at", "raw_callback", "updated_at"]
    )
    signals.payment_failed.send(
        sender=Payment, payment=payment, reason=payment.failure_reason, by=by
    )
    return payment


def _parse_amount(amount: Any) -> Decimal:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({"amount": "The amount is not a number."}) from exc
    if not value.is_finite():
        raise ValidationError({"amount": "The amount is not a number."})
    return value


@transaction.atomic
def payment_record_callback(
    *,
    provider_reference: str,
    succeeded: bool,
    amount: Any,
    raw: dict[str, Any],
    reason: str = "",
    tenant: Tenant | None = None,
) -> CallbackResult:
    """Settle a payment from the provider's callback.

    Unknown reference → NotFound; amount mismatch → AmountMismatch (both logged, nothing
    changed). A repeat of a callback already applied returns the same result with
    `duplicate=True` and does nothing twice; a contradicting one is InvalidTransition.
    """
    provider_reference = provider_reference.strip() if isinstance(provider_reference, str) else ""
    try:
        value = _parse_amount(amount)
    except ValidationError:
        logger.warning(
            "callback ref=%s rejected: amount %r is not a number", provider_reference, amount
        )
        raise
    if not provider_reference:
        logger.warning("callback rejected: no provider reference")
        raise ValidationError({"provider_reference": "The callback has no provider reference."})
    queryset = Payment.objects.select_for_update()
    if tenant is not None:
        queryset = queryset.filter(tenant=tenant)
    payment = queryset.filter(provider_reference=provider_reference).first()
    if payment is None:
        logger.warning("callback ref=%s rejected: unknown reference", provider_reference)
        raise NotFound(f"No payment with reference {provider_reference!r}.")
    if value != payment.amount:
        logger.warning(
            "callback ref=%s rejected: amount %s != expected %s",
            provider_reference,
            value,
            payment.amount,
        )
        raise AmountMismatch(
            f"Amount {value} does not match the expected {payment.amount} {payment.currency}."
        )
    wanted = Payment.Status.COMPLETED if succeeded else Payment.Status.FAILED
    if payment.status == wanted:
        logger.info("callback ref=%s duplicate (%s): nothing done", provider_reference, wanted)
        return CallbackResult(
            payment=payment,
            hotspot_user=HotspotUser.objects.filter(payment=payment).first(),
            duplicate=True,
        )
    if payment.status != Payment.Status.PENDING:
        logger.warning(
            "callback ref=%s rejected: says %s but payment is %s",
            provider_reference,
            wanted,
            payment.status,
        )
        raise InvalidTransition(
            f"Payment {provider_reference} is already {payment.status}; the callback says {wanted}."
        )
    if succeeded:
        payment, hotspot_user = payment_complete(payment=payment, raw=raw)
        logger.info(
            "callback ref=%s completed; hotspot user %s", provider_reference, hotspot_user.username
        )
        return CallbackResult(payment=payment, hotspot_user=hotspot_user, duplicate=False)
    payment = payment_fail(payment=payment, reason=reason, raw=raw)
    logger.info("callback ref=%s failed: %s", provider_reference, payment.failure_reason)
    return CallbackResult(payment=payment, hotspot_user=None, duplicate=False)


# --- the customer's own purchase: M-Pesa STK push (the portal) -------------------------------

PHONE_HELP = gettext_lazy("Enter your M-Pesa number, e.g. 0712345678.")


class RateLimited(DomainError):
    code = "rate_limited"


class CallbackRejected(DomainError):
    code = "bad_callback"


def normalize_mpesa_phone(value: str) -> str:
    """A Kenyan mobile number as people type it → 2547XXXXXXXX / 2541XXXXXXXX, or ValueError.

    Accepted: 0712345678, 712345678, +254712345678, 254712345678, 0112345678 (spaces and
    dashes ignored).
    """
    digits = (value or "").strip().replace(" ", "").replace("-", "")
    if digits.startswith("+"):
        digits = digits[1:]
    if not digits.isdigit():
        raise ValueError(str(PHONE_HELP))
    if len(digits) == 12 and digits.startswith("254"):
        local = digits[3:]
    elif len(digits) == 10 and digits.startswith("0"):
        local = digits[1:]
    elif len(digits) == 9:
        local = digits
    else:
        raise ValueError(str(PHONE_HELP))
    if local[0] not in "17":
        raise ValueError(_("That is not a Kenyan mobile number.") + " " + str(PHONE_HELP))
    return "254" + local


def callback_url(*, payment: Payment, public_url: str | None = None) -> str:
    """Daraja's CallBackURL for this payment: PUBLIC_URL + a path carrying its secret."""
    from django.urls import reverse

    base = (settings.PUBLIC_URL or public_url or "").rstrip("/")
    return base + reverse("payments:mpesa_callback", args=[payment.callback_secret])


def _check_stk_limits(*, phone: str, client_ip: str) -> None:
    window = timezone.now() - timedelta(seconds=settings.PORTAL_STK_LIMIT_WINDOW_SECONDS)
    minutes = max(settings.PORTAL_STK_LIMIT_WINDOW_SECONDS // 60, 1)
    recent = Payment.objects.filter(provider=Payment.Provider.DARAJA, created_at__gte=window)
    if recent.filter(phone=phone).count() >= settings.PORTAL_STK_LIMIT_PER_PHONE:
        raise RateLimited(
            _(
                "This phone has already been sent {count} M-Pesa prompts in the last {minutes} "
                "minutes. Please wait a while before trying again."
            ).format(count=settings.PORTAL_STK_LIMIT_PER_PHONE, minutes=minutes)
        )
    if client_ip and recent.filter(client_ip=client_ip).count() >= settings.PORTAL_STK_LIMIT_PER_IP:
        raise RateLimited(
            _(
                "Too many payments were started from this device in the last {minutes} minutes. "
                "Please wait a while before trying again."
            ).format(minutes=minutes)
        )


@transaction.atomic
def _stk_payment_create(
    *, tenant: Tenant, package: Package, phone: str, client_ip: str, handoff: dict[str, str]
) -> Payment:
    from .models import DarajaCredentials

    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)  # serializes the limit check
    if tenant.status != Tenant.Status.ACTIVE:
        raise InvalidTransition(f"{tenant.name} is not taking payments right now.")
    if package.tenant_id != tenant.pk or not package.is_active:
        raise ValidationError({"package": "Choose one of the packages on sale."})
    if package.price != package.price.to_integral_value():
        raise ValidationError({"package": "M-Pesa takes whole amounts; this price has cents."})
    credentials = DarajaCredentials.objects.filter(tenant=tenant).first()
    if credentials is None or not credentials.is_complete:
        raise InvalidTransition(f"{tenant.name} cannot take M-Pesa payments yet.")
    try:
        phone = normalize_mpesa_phone(phone)
    except ValueError as exc:
        raise ValidationError({"phone": str(exc)}) from exc
    _check_stk_limits(phone=phone, client_ip=client_ip)
    payment = payment_initiate(tenant=tenant, package=package, phone=phone)
    payment.provider = Payment.Provider.DARAJA
    payment.client_ip = client_ip[:45]
    payment.handoff = handoff
    payment.token_expires_at = timezone.now() + timedelta(hours=settings.PORTAL_TOKEN_HOURS)
    payment.save(update_fields=["provider", "client_ip", "handoff", "token_expires_at"])
    return payment


def payment_start_stk(
    *,
    tenant: Tenant,
    package: Package,
    phone: str,
    client_ip: str = "",
    handoff: dict[str, str] | None = None,
    public_url: str | None = None,
) -> Payment:
    """A customer buys `package` on the portal: a pending payment, then Daraja's STK push.

    Not one transaction on purpose: the payment commits first (the callback may arrive before
    Daraja's answer does), the HTTP call runs outside any transaction, and its outcome is
    recorded in a second one. A refused push fails the payment at once with the reason; an
    ambiguous one (timeout, garbled answer) stays pending for the callback, the query or the
    timeout. Either way the payment is never left pending forever.
    """
    from .providers import ProviderError, get_provider

    payment = _stk_payment_create(
        tenant=tenant, package=package, phone=phone, client_ip=client_ip, handoff=handoff or {}
    )
    provider = get_provider("daraja")
    try:
        result = provider.start(
            payment=payment,
            credentials=tenant.daraja_credentials,
            callback_url=callback_url(payment=payment, public_url=public_url),
        )
    except ProviderError as exc:
        logger.warning("stk push for %s: %s (%s)", payment.provider_reference, exc, exc.detail)
        STK_PUSHES.labels("ambiguous" if exc.ambiguous else "refused").inc()
        if exc.ambiguous:
            Payment.objects.filter(pk=payment.pk).update(failure_reason=exc.message[:500])
        else:
            _fail_if_pending(payment=payment, reason=exc.message, result_code="push_refused")
        payment.refresh_from_db()
        return payment
    STK_PUSHES.labels("sent").inc()
    Payment.objects.filter(pk=payment.pk).update(
        checkout_request_id=result.checkout_request_id,
        merchant_request_id=result.merchant_request_id,
    )
    payment.refresh_from_db()
    return payment


@transaction.atomic
def _fail_if_pending(*, payment: Payment, reason: str, result_code: str, raw: Any = None) -> bool:
    locked = Payment.objects.select_for_update().get(pk=payment.pk)
    if locked.status != Payment.Status.PENDING:
        return False
    Payment.objects.filter(pk=locked.pk).update(result_code=result_code[:16])
    payment_fail(payment=locked, reason=reason, raw=raw)
    return True


@transaction.atomic
def payment_settle_stk_callback(*, secret: str, body: Any) -> CallbackResult:
    """Daraja's callback for the payment whose callback secret is `secret`.

    Unknown secret → NotFound; a body that is not a strict stkCallback, or one naming another
    checkout → CallbackRejected (nothing changed). A repeat answers as the first did and
    provisions nothing new. ResultCode 0 with the right amount completes the payment; a wrong
    amount or any other code fails it with a sentence the customer understands. A success that
    arrives after our own timeout still completes the payment: the customer's money is real.
    """
    from .providers.daraja import CallbackError, parse_callback, result_sentence

    payment = (
        Payment.objects.select_for_update()
        .filter(callback_secret=secret or "-", provider=Payment.Provider.DARAJA)
        .first()
        if isinstance(secret, str) and 20 <= len(secret) <= 64
        else None
    )
    if payment is None:
        logger.warning("mpesa callback rejected: unknown callback secret")
        raise NotFound("No payment waits for a callback on this address.")
    try:
        parsed = parse_callback(body)
    except CallbackError as exc:
        logger.warning("mpesa callback for %s rejected: %s", payment.provider_reference, exc)
        raise CallbackRejected(str(exc)) from exc
    if payment.checkout_request_id and parsed.checkout_request_id != payment.checkout_request_id:
        logger.warning(
            "mpesa callback for %s rejected: checkout %s is not %s",
            payment.provider_reference,
            parsed.checkout_request_id,
            payment.checkout_request_id,
        )
        raise CallbackRejected("This callback is about another checkout request.")
    hotspot_user = HotspotUser.objects.filter(payment=payment).first()
    if payment.status == Payment.Status.COMPLETED or (
        payment.status == Payment.Status.FAILED and payment.result_code != "timeout"
    ):
        logger.info("mpesa callback for %s repeated: nothing done", payment.provider_reference)
        return CallbackResult(payment=payment, hotspot_user=hotspot_user, duplicate=True)
    if payment.status == Payment.Status.FAILED and not parsed.succeeded:
        return CallbackResult(payment=payment, hotspot_user=None, duplicate=True)
    fields = {
        "result_code": parsed.result_code,
        "receipt_number": parsed.receipt_number,
        "checkout_request_id": parsed.checkout_request_id,
        "merchant_request_id": parsed.merchant_request_id,
    }
    if payment.status == Payment.Status.FAILED:  # a late success after our timeout
        fields.update(status=Payment.Status.PENDING, failure_reason="", failed_at=None)
    Payment.objects.filter(pk=payment.pk).update(**fields)
    payment.refresh_from_db()
    if parsed.succeeded and parsed.amount != payment.amount:
        Payment.objects.filter(pk=payment.pk).update(result_code="amount")
        reason = (
            f"M-Pesa reported {payment.currency} {parsed.amount} but the package costs "
            f"{payment.currency} {payment.amount}; ask the hotspot to sort it out."
        )
        payment = payment_fail(payment=payment, reason=reason, raw=body)
        return CallbackResult(payment=payment, hotspot_user=None, duplicate=False)
    if parsed.succeeded:
        payment, hotspot_user = payment_complete(payment=payment, raw=body)
        return CallbackResult(payment=payment, hotspot_user=hotspot_user, duplicate=False)
    reason = result_sentence(parsed.result_code, parsed.result_desc)
    payment = payment_fail(payment=payment, reason=reason, raw=body)
    return CallbackResult(payment=payment, hotspot_user=None, duplicate=False)


def payment_query_stk(*, payment: Payment) -> Payment:
    """Ask Daraja how a pending STK payment went and settle it if Daraja knows.

    Daraja errors leave it pending (asked again next time; the timeout ends it).
    """
    from .models import DarajaCredentials
    from .providers import ProviderError, get_provider
    from .providers.daraja import result_sentence

    credentials = DarajaCredentials.objects.filter(tenant_id=payment.tenant_id).first()
    Payment.objects.filter(pk=payment.pk).update(
        last_queried_at=timezone.now(), query_count=models.F("query_count") + 1
    )
    try:
        result = get_provider("daraja").query(payment=payment, credentials=credentials)
    except ProviderError as exc:
        logger.warning("stk query for %s: %s", payment.provider_reference, exc.detail)
        payment.refresh_from_db()
        return payment
    if result.state == "completed":
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if locked.status == Payment.Status.PENDING:
                Payment.objects.filter(pk=locked.pk).update(result_code=result.result_code)
                payment_complete(payment=locked, raw={"query": result.raw})
    elif result.state == "failed":
        _fail_if_pending(
            payment=payment,
            reason=result_sentence(result.result_code, result.description),
            result_code=result.result_code,
            raw={"query": result.raw},
        )
    payment.refresh_from_db()
    return payment


def payment_time_out(*, payment: Payment, now: datetime | None = None) -> bool:
    """Fail a pending STK payment older than MPESA_TIMEOUT_SECONDS; False if not due/settled."""
    from .providers.daraja import TIMED_OUT_SENTENCE

    now = now or timezone.now()
    if payment.created_at > now - timedelta(seconds=settings.MPESA_TIMEOUT_SECONDS):
        return False
    return _fail_if_pending(payment=payment, reason=TIMED_OUT_SENTENCE, result_code="timeout")


@transaction.atomic
def payment_record_cash(
    *, tenant: Tenant, package: Package, by: User, phone: str = "", username: str = ""
) -> tuple[Payment, HotspotUser]:
    """A counter sale: staff took cash, so a completed cash payment and its hotspot user.

    The sale shows in payments and revenue like an M-Pesa one (PaymentCompleted).
    """
    from hotspot.services import hotspot_user_create

    from .providers import get_provider

    hotspot_user = hotspot_user_create(
        tenant=tenant, package=package, by=by, phone=phone, username=username
    )
    if package.price <= 0:
        raise ValidationError({"package": "That package is free; there is nothing to pay."})
    payment = Payment.objects.create(
        tenant=tenant,
        package=package,
        phone=hotspot_user.phone,
        amount=package.price,
        currency=package.currency,
        provider=Payment.Provider.CASH,
        provider_reference="CASH" + secrets.token_hex(8).upper(),
    )
    get_provider("cash").start(payment=payment, credentials=None, callback_url="")
    HotspotUser.objects.filter(pk=hotspot_user.pk).update(payment=payment)
    payment, hotspot_user = payment_complete(payment=payment, by=by)
    return payment, hotspot_user


# --- a tenant's own Daraja account -----------------------------------------------------------

DARAJA_SECRET_FIELDS = ("passkey", "consumer_key", "consumer_secret")


@transaction.atomic
def daraja_credentials_set(
    *,
    tenant: Tenant,
    by: User | None,
    shortcode: str,
    account_type: str = "paybill",
    till_number: str = "",
    passkey: str = "",
    consumer_key: str = "",
    consumer_secret: str = "",
) -> Any:
    """Set the tenant's Daraja account; a blank secret keeps the stored one (write-only)."""
    from .models import DarajaCredentials

    allowed = by is None or by.is_system_admin or (by.is_tenant_admin and by.tenant_id == tenant.pk)
    if not allowed:
        raise PermissionDenied("Only the tenant's admins can change its M-Pesa account.")
    shortcode = (shortcode or "").strip()
    till_number = (till_number or "").strip()
    errors: dict[str, str] = {}
    if not (shortcode.isdigit() and 5 <= len(shortcode) <= 10):
        errors["shortcode"] = "A shortcode is 5 to 10 digits, e.g. 174379."
    if account_type not in DarajaCredentials.AccountType.values:
        errors["account_type"] = "Choose paybill or till."
    elif account_type == DarajaCredentials.AccountType.TILL and not (
        till_number.isdigit() and 5 <= len(till_number) <= 10
    ):
        errors["till_number"] = "A till number is 5 to 10 digits."
    credentials = DarajaCredentials.objects.select_for_update().filter(tenant=tenant).first()
    new = credentials is None
    for name in DARAJA_SECRET_FIELDS:
        value = locals()[name]
        if new and not (value or "").strip():
            errors[name] = "Required."
    if errors:
        raise ValidationError(errors)
    credentials = credentials or DarajaCredentials(tenant=tenant)
    credentials.shortcode = shortcode
    credentials.account_type = account_type
    credentials.till_number = till_number if account_type == "till" else ""
    for name, value in (
        ("passkey", passkey),
        ("consumer_key", consumer_key),
        ("consumer_secret", consumer_secret),
    ):
        if (value or "").strip():
            setattr(credentials, name, value.strip())
    credentials.save()
    return credentials
