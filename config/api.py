"""API plumbing shared by every app's `api.py`: error bodies, strict input, filters, the schema's
error responses, role gates. (Pagination, throttles and the JSON parser live in their own small
modules because DRF imports them while importing its views.)

One exception handler gives every API error the same shape, so clients parse one thing:
`{"error": {"code": "<slug>", "message": "<for people>", "fields": {<field>: [<msg>, ...]}}}`
(`fields` only on validation errors). Domain errors from the services map to HTTP statuses here
and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.errors import DomainError, InvalidTransition, NotFound, PermissionDenied

NON_FIELD = "non_field_errors"

#: HTTP status of each domain error class (the first match wins; DomainError is the fallback).
DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, status.HTTP_404_NOT_FOUND),
    (PermissionDenied, status.HTTP_403_FORBIDDEN),
    (InvalidTransition, status.HTTP_409_CONFLICT),
    (DomainError, status.HTTP_409_CONFLICT),
)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape of the API (also used by views that answer errors themselves)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def _as_messages(value: Any) -> Any:
    """DRF/Django error details → plain strings, keeping the nesting of nested serializers."""
    if isinstance(value, dict):
        return {str(key): _as_messages(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_messages(item) for item in value]
    return str(value)


def _validation_fields(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {str(key): _as_messages(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return {NON_FIELD: [str(item) for item in detail]}
    return {NON_FIELD: [str(detail)]}


def _validation_message(fields: dict[str, Any]) -> str:
    general = fields.get(NON_FIELD)
    if general and len(fields) == 1 and isinstance(general, list):
        return " ".join(str(message) for message in general)
    return "Some fields are invalid; see `fields`."


def _django_validation_fields(exc: DjangoValidationError) -> dict[str, Any]:
    if hasattr(exc, "error_dict"):
        return {
            (NON_FIELD if key == "__all__" else key): messages
            for key, messages in exc.message_dict.items()
        }
    return {NON_FIELD: list(exc.messages)}


def _detail_message_and_code(exc: exceptions.APIException) -> tuple[str, str]:
    detail = exc.detail
    if isinstance(detail, dict):  # simplejwt's InvalidToken: {"detail", "code", "messages"}
        message = str(detail.get("detail", exc.default_detail))
        code = str(detail.get("code") or getattr(exc, "default_code", "error"))
        return message, code
    if isinstance(detail, list):
        message = " ".join(str(item) for item in detail) or str(exc.default_detail)
        return message, str(getattr(exc, "default_code", "error"))
    return str(detail), str(getattr(detail, "code", None) or exc.default_code)


class ApiDocsAccess(permissions.BasePermission):
    """/api/schema/ and /api/docs/: anyone if API_DOCS_PUBLIC, else signed-in users (any role)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(settings.API_DOCS_PUBLIC or (request.user and request.user.is_authenticated))


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every handled error in the one shape; others stay 500s."""
    headers: dict[str, str] = {}
    if isinstance(exc, DjangoValidationError):
        fields = _django_validation_fields(exc)
        body = error_body("invalid", _validation_message(fields), fields)
        code = status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, DomainError):
        code = next(st for cls, st in DOMAIN_STATUS if isinstance(exc, cls))
        body = error_body(exc.code, exc.message)
    elif isinstance(exc, exceptions.ValidationError):
        fields = _validation_fields(exc.detail)
        body = error_body("invalid", _validation_message(fields), fields)
        code = exc.status_code
    else:
        if isinstance(exc, Http404):
            exc = exceptions.NotFound()
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied()
        if not isinstance(exc, exceptions.APIException):
            return None
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = f"{int(exc.wait)}"
        message, error_code = _detail_message_and_code(exc)
        body = error_body(error_code, message)
        code = exc.status_code
    set_rollback()
    return Response(body, status=code, headers=headers)


@csrf_exempt  # nothing to protect, and a CSRF refusal would answer an HTML 403 instead of a 404
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown URLs under /api/ answer in the API's error shape, not with an HTML page."""
    return JsonResponse(error_body("not_found", "No API endpoint at this address."), status=404)


# --- Input ---------------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """An input serializer that refuses fields it does not know: a typo is an error, not a no-op."""

    ignored_fields = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data: Any) -> Any:
        unknown = []
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields) - self.ignored_fields)
        try:
            value = super().to_internal_value(data)
        except exceptions.ValidationError as exc:
            if not unknown or not isinstance(exc.detail, dict):
                raise
            errors = dict(exc.detail)
        else:
            errors = {}
        errors.update({str(name): ["Unknown field."] for name in unknown})
        if errors:
            raise exceptions.ValidationError(errors)
        return value


class IdFilter(filters.NumberFilter):
    """Filter by a row id given as a plain integer.

    Not a choice of existing rows (django-filter's default for foreign keys), which would answer
    400 for ids that do not exist and so reveal which ids exist in other tenants.
    """

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)  # BigAutoField's range on every database
        super().__init__(*args, **kwargs)


class UTCDateTimeField(IsoDateTimeField):
    """ISO 8601 date-time, converted to UTC so any offset the parser accepts suits the database
    (PostgreSQL refuses offsets beyond ±15:59)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError("Enter a date and time within range.") from exc


class UTCDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


# --- Schema ------------------------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable slug, e.g. `invalid`.")
    message = serializers.CharField(help_text="For people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: messages per field (`non_field_errors` for the rest).",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error responses every operation can give."""

    def _error_responses(self) -> dict[str, str]:
        codes: dict[str, str] = {}
        unsafe = self.method not in permissions.SAFE_METHODS
        if unsafe or self._is_list_view():
            codes["400"] = "Invalid input; `error.fields` says which."
        if self.get_auth():
            codes["401"] = "Not signed in, token invalid or expired, or the account is blocked."
            codes["403"] = (
                "Signed in, but your role may not do this (or the CSRF token is missing)."
            )
        if "{" in self.path or self._is_list_view():
            codes["404"] = "No such row among those you may see (or no such page)."
        if unsafe:
            codes["409"] = "The change is not allowed in the current state."
            codes["415"] = "Unsupported or malformed request Content-Type."
            codes["429"] = "Too many writes; see Retry-After."
        return codes

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        error = OpenApiResponse(ErrorSerializer)
        for code, description in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(error, code, direction=direction)
                responses[code]["description"] = description
        for code, response in responses.items():
            if code.startswith(("4", "5")) and "content" not in response:
                described = self._get_response_for_code(error, code, direction=direction)
                response["content"] = described["content"]
        return responses


# --- Permissions -------------------------------------------------------------------------------
# Coarse role gates so a refused caller gets 403 before input validation; the services remain
# the authority (they check the tenant and raise config.errors.PermissionDenied themselves).


def is_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and (user.is_system_admin or user.is_tenant_admin))


class IsSystemAdmin(permissions.BasePermission):
    message = "Only system admins can do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_system_admin)


class IsAdminRole(permissions.BasePermission):
    """System admins and tenant admins; staff are read-only."""

    message = "Only admins can do this; staff have read-only access."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_admin(request.user)


class ReadOnlyOrAdminRole(IsAdminRole):
    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)
