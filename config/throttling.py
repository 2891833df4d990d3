"""The API's throttles (kept light: DRF imports them while importing its views).

Rates live in settings (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]) and are read on each request,
not frozen at import like DRF's class attribute, so override_settings works in tests. They count in
the default cache: per process unless CACHES points at a shared cache.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import permissions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.")
        return rates[self.scope]

    def __init__(self) -> None:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)


class WriteRateThrottle(_SettingsRateThrottle):
    """Unsafe methods (POST/PUT/PATCH/DELETE), per user (per address when anonymous)."""

    scope = "write"

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AuthRateThrottle(_SettingsRateThrottle):
    """Token endpoints, per client address (they are how credentials get guessed)."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CallbackRateThrottle(AuthRateThrottle):
    """The payment provider's callback, per client address (generous: retries are normal)."""

    scope = "payment_callback"
