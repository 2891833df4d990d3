"""The one base class for refused domain transitions, shared by every app's services, and the
one check of an update's field names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError


class DomainError(Exception):
    """A change the domain refuses (illegal transition, bad reference); nothing was changed.

    `code` is a stable machine-readable slug for APIs; `str(error)` is the human message.
    """

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InvalidTransition(DomainError):
    code = "invalid_transition"


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    code = "permission_denied"


def reject_unknown_fields(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse an update naming a field its service does not change (every `*_update` service).

    One message for all of them, so an API client learns the same thing from each.
    """
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationError(f"These fields cannot be updated: {', '.join(sorted(unknown))}.")
