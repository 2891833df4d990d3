"""Each request in its tenant's time zone: templates, forms and `localtime()` follow it.

A tenant's people see times in the tenant's zone (Tenant.time_zone); system admins and anonymous
visitors keep TIME_ZONE. The API (/api/) keeps TIME_ZONE for everyone: its ISO times carry their
offset anyway, and a bearer token is only read in the view, so a session and a token would
otherwise get different offsets for the same record. The
captive portal, which has no signed-in user, keeps TIME_ZONE too: its only time, the login's
expiry, is written in its tenant's zone by payments.portal on the page and by the browser
when it changes (portal_base.html's data-time-zone, static/js/portal.js).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone


class TenantTimeZoneMiddleware:
    """Needs AuthenticationMiddleware before it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    exempt_prefixes: tuple[str, ...] = ("/api/",)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        signed_in = (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self.exempt_prefixes)
        )
        tenant = getattr(user, "tenant", None) if signed_in else None
        if tenant is None:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(tenant.tzinfo)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
