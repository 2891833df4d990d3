"""Notification pages: the system admins' live feed of `system.admin` events."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from accounts.views import SystemAdminMixin
from tenants import selectors as tenant_selectors
from tenants.models import Tenant

from .catalog import SYSTEM_ADMIN_GROUP
from .models import StoredEvent

RECENT = 30


class SystemEventsView(SystemAdminMixin, View):
    """The latest stored system.admin events; the page's socket prepends new ones live."""

    def get(self, request: HttpRequest) -> HttpResponse:
        recent = (
            StoredEvent.objects.filter(targets__group=SYSTEM_ADMIN_GROUP)
            .order_by("-id")
            .distinct()[:RECENT]
        )
        pending = tenant_selectors.status_counts(user=request.user)[Tenant.Status.PENDING]
        return render(
            request,
            "notifications/system_events.html",
            {"events": recent, "pending": pending, "channel": SYSTEM_ADMIN_GROUP},
        )
