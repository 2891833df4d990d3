"""Small helpers shared by every app that shows personal data."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q


def mask_phone(phone: str | None) -> str:
    """Mask a phone number for display: 254712345678 → 2547****678 (length not revealed)."""
    if not phone:
        return ""
    value = phone.strip()
    if len(value) < 8:
        return value[:2] + "****"
    return f"{value[:4]}****{value[-3:]}"


def normalize_phone(phone: str) -> str:
    """Digits only, optional leading '+' dropped; 9–15 digits (E.164 length) or ValueError."""
    value = (phone or "").strip().replace(" ", "").replace("-", "")
    if value.startswith("+"):
        value = value[1:]
    if not value.isdigit() or not 9 <= len(value) <= 15:
        raise ValueError("Enter a phone number of 9 to 15 digits, e.g. 254712345678.")
    return value


def clean_phone(phone: str, *, field: str = "phone", required: bool = False) -> str:
    """`normalize_phone` for a service: empty stays "" unless `required`; a bad number is a
    ValidationError on `field`, so the form shows it beside the right input."""
    if not phone and not required:
        return ""
    try:
        return normalize_phone(phone)
    except ValueError as exc:
        raise ValidationError({field: str(exc)}) from exc


def search_q(search: str, field: str) -> Q | None:
    """Rows whose `field` contains `search` or whose phone holds its digits (None: no search).

    Phones are stored 254…; a local "07…" search matches without its trunk zero."""
    search = (search or "").strip()
    if not search:
        return None
    query = Q(**{f"{field}__icontains": search})
    digits = "".join(ch for ch in search if ch.isdigit()).lstrip("0")
    if digits:
        query |= Q(phone__contains=digits)
    return query
