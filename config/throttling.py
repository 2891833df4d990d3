"""The API's throttles (kept light: DRF imports them while importing its views).

Rates live in settings (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]) and are read on each request,
not frozen at import like DRF's class attribute, so override_settings works in tests. They count in
the default cache: per process unless CACHES points at a shared cache. The client address is
config.clientip.client_ip (the right hop of X-Forwarded-For only, per TRUSTED_PROXIES/NUM_PROXIES).

When the cache (Redis) is down a throttle cannot count. Each scope decides (docs/security.md):
- fail open (`fail_open = True`): the request goes through, a warning is logged. The payment
  callback (a lost callback is a lost payment; it is signed anyway) and API writes (signed-in,
  tenant-scoped users; the database is the real limit).
- fail closed: 503 with Retry-After. Sign-in (token endpoints, /admin/login/) and registration:
  anonymous endpoints that guessing and floods aim at, which must not become unlimited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions, permissions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from config.clientip import client_ip

logger = logging.getLogger("config.throttling")
UNAVAILABLE_RETRY_AFTER = 30


class ThrottleUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "throttle_unavailable"
    default_detail = "This service is briefly unavailable; try again in a moment."
    wait = UNAVAILABLE_RETRY_AFTER  # sent as Retry-After by config.api's exception handler


class _SettingsRateThrottle(SimpleRateThrottle):
    fail_open = False

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.")
        return rates[self.scope]

    def __init__(self) -> None:
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_ident(self, request: Any) -> str:
        return client_ip(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache backend's own error types (redis, memcached, ...)
            if self.fail_open:
                logger.warning(
                    "throttle %s: cache unavailable, request let through: %r", self.scope, exc
                )
                return True
            logger.error("throttle %s: cache unavailable, request refused: %r", self.scope, exc)
            raise ThrottleUnavailable() from exc


class WriteRateThrottle(_SettingsRateThrottle):
    """Unsafe methods (POST/PUT/PATCH/DELETE), per user (per address when anonymous)."""

    scope = "write"
    fail_open = True

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


class AddressRateThrottle(_SettingsRateThrottle):
    """Per client address, for the scope named by the subclass (or the constructor)."""

    def __init__(self, scope: str | None = None) -> None:
        if scope is not None:
            self.scope = scope
        super().__init__()

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthRateThrottle(AddressRateThrottle):
    """Token endpoints, per client address (they are how credentials get guessed)."""

    scope = "auth"


class CallbackRateThrottle(AddressRateThrottle):
    """The payment provider's callback, per client address (generous: retries are normal)."""

    scope = "payment_callback"
    fail_open = True


def throttle_posts(scope: str) -> Callable:
    """Throttle a Django (non-DRF) view's POSTs per client address with the rate of `scope`.

    Over the rate: 429 with Retry-After. Cache down: 503 (these scopes fail closed).
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                throttle = AddressRateThrottle(scope)
                try:
                    allowed = throttle.allow_request(request, None)
                except ThrottleUnavailable:
                    response = HttpResponse(
                        "This page is briefly unavailable; try again in a moment.",
                        status=503,
                        content_type="text/plain; charset=utf-8",
                    )
                    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
                    return response
                if not allowed:
                    wait = int(throttle.wait() or 1) + 1
                    response = HttpResponse(
                        f"Too many attempts from your address. Try again in {wait} seconds.",
                        status=429,
                        content_type="text/plain; charset=utf-8",
                    )
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
