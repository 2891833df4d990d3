"""Notification pages: the system admins' live feed, and every user's inbox (/notifications/)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.forms import BootstrapFormMixin
from accounts.views import PortalMixin, SystemAdminMixin
from config.errors import NotFound
from notifications import announcements, inbox
from notifications.events.catalog import CATEGORIES
from notifications.models import StoredEvent
from notifications.realtime.groups import SYSTEM_ADMIN_GROUP
from tenants import selectors as tenant_selectors
from tenants.models import Tenant

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


class AnnouncementForm(BootstrapFormMixin, forms.Form):
    title = forms.CharField(
        label=gettext_lazy("Title"),
        max_length=announcements.MAX_TITLE,
        required=False,
        help_text=gettext_lazy("Optional; “Platform Announcement” if left empty."),
    )
    message = forms.CharField(
        label=gettext_lazy("Message"),
        max_length=announcements.MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "Shown as text to every active tenant's admins and staff, and in their inbox."
        ),
    )
    level = forms.ChoiceField(
        label=gettext_lazy("Level"),
        choices=[
            ("info", gettext_lazy("Information")),
            ("warning", gettext_lazy("Warning")),
            ("error", gettext_lazy("Urgent")),
        ],
        initial="info",
    )


class SystemAnnounceView(SystemAdminMixin, View):
    """A system admin announces to every tenant's users (e.g. planned maintenance)."""

    template_name = "notifications/system_announce.html"

    def _render(self, request: HttpRequest, form: Any, status: int = 200) -> HttpResponse:
        recent = StoredEvent.objects.filter(name="PlatformAnnouncement").order_by("-id")[:10]
        return render(request, self.template_name, {"form": form, "recent": recent}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, AnnouncementForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AnnouncementForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        announcements.announce(by=request.user, **form.cleaned_data)
        messages.success(request, _("The announcement has been sent to every active tenant."))
        return redirect("notifications:system_announce")


class InboxView(PortalMixin, View):
    """The user's notifications, newest first, filterable by category, 25 a page.

    Opening the page reads nothing; a notification is read when clicked (InboxReadView) or by
    "mark all as read".
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        category = request.GET.get("category") or ""
        if category and category not in CATEGORIES:
            category = ""  # an unknown filter shows everything rather than an empty page
        events = inbox.visible_events(request.user, category=category or None)
        page = Paginator(events, 25).get_page(request.GET.get("page"))
        read = inbox.read_ids(request.user, page.object_list)
        items = [(event, event.id in read) for event in page.object_list]
        return render(
            request,
            "notifications/inbox.html",
            {"page": page, "items": items, "category": category, "categories": CATEGORIES},
        )


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = "/notifications/"
    return redirect(target)


class InboxReadView(PortalMixin, View):
    """Mark one notification read (the user clicked it), then go back to the list."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        try:
            inbox.mark_read(user=request.user, event_ids=[pk])
        except NotFound as exc:
            raise Http404(str(exc)) from exc
        return _back(request)


class InboxReadAllView(PortalMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        inbox.mark_all_read(user=request.user)
        return _back(request)
