"""Secrets at rest: Fernet with the keys of PAYMENTS_ENCRYPTION_KEYS (first encrypts, all decrypt).

A database dump alone does not reveal a tenant's Daraja passkey or consumer secret; the key
lives in the environment, not in the database. Listing a new key first rotates: old rows still
decrypt with the old key until they are saved again.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("PAYMENTS_ENCRYPTION_KEYS is empty; set a Fernet key.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "PAYMENTS_ENCRYPTION_KEYS holds a key that is not a Fernet key "
            "(32 url-safe base64-encoded bytes; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'`)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.PAYMENTS_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    """The plaintext; "" for an empty field. A token no key opens raises ImproperlyConfigured."""
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored payment secret cannot be decrypted with PAYMENTS_ENCRYPTION_KEYS "
            "(was the key changed without keeping the old one?)."
        ) from exc


def mask_secret(value: str) -> str:
    """What a page may show of a secret: its last 4 characters at most."""
    if not value:
        return ""
    return "••••" + (value[-4:] if len(value) >= 12 else "")
