"""Payment provider backends, chosen by settings.PAYMENT_PROVIDER (as Django chooses its email
backend): `get_provider()` returns the configured one, `get_provider("cash")` a named one."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import PaymentProvider, ProviderError, QueryResult, StartResult

__all__ = ["PaymentProvider", "ProviderError", "QueryResult", "StartResult", "get_provider"]


def get_provider(name: str | None = None) -> PaymentProvider:
    name = name or settings.PAYMENT_PROVIDER
    try:
        path = settings.PAYMENT_PROVIDERS[name]
    except KeyError:
        raise ImproperlyConfigured(
            f"Unknown payment provider {name!r}; PAYMENT_PROVIDERS has "
            f"{', '.join(settings.PAYMENT_PROVIDERS)}."
        ) from None
    return import_string(path)()
