"""Tenant pages: public registration, the tenant dashboard and settings, system-admin pages."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied as Http403
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views import View
from django.views.decorators.cache import never_cache

from accounts.models import User
from accounts.views import PortalMixin, SystemAdminMixin, TenantMemberMixin, refuse_with_message
from config.errors import DomainError
from config.errors import PermissionDenied as DomainPermissionDenied
from config.pages import live_row, paginate
from config.throttling import throttle_posts
from payments.views import mpesa_settings_context

from . import selectors, services
from .forms import RegistrationForm, TenantSettingsForm, TenantSuspendForm
from .models import Tenant

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- public registration


def _same_registration_done(data: dict[str, Any]) -> Tenant | None:
    """A double submit: the pending tenant the same person registered a moment ago, if any.

    The service refuses a taken short name, so the second of two identical posts fails. When
    that tenant is pending and its admin has this username and password, it was this person's
    own first post: show them success instead of an error.
    """
    admin = (
        User.objects.filter(
            username=data.get("admin_username", ""),
            role=User.Role.TENANT_ADMIN,
            tenant__status=Tenant.Status.PENDING,
        )
        .select_related("tenant")
        .first()
    )
    if admin and admin.check_password(data.get("admin_password", "")):
        return admin.tenant
    return None


@method_decorator(throttle_posts("register"), name="post")
class RegisterView(View):
    """Public sign-up; POSTs throttled per client address (each one toasts every system admin)."""

    template_name = "tenants/register.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": RegistrationForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = RegistrationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                tenant = services.tenant_register(
                    name=data["name"],
                    slug=data["slug"],
                    contact_email=data["contact_email"],
                    contact_phone=data["contact_phone"],
                    admin_username=data["admin_username"],
                    admin_password=data["admin_password"],
                    admin_first_name=data["admin_first_name"],
                    admin_last_name=data["admin_last_name"],
                )
            except ValidationError as exc:
                tenant = _same_registration_done(data)
                if tenant is None:
                    form.apply_service_error(
                        exc,
                        renames={
                            "username": "admin_username",
                            "password": "admin_password",
                            "email": "contact_email",
                        },
                    )
            if form.is_valid():
                request.session["registered_tenant"] = tenant.name
                return redirect("tenants:register_done")
        return render(request, self.template_name, {"form": form}, status=400)


class RegisterDoneView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        name = request.session.get("registered_tenant")
        return render(request, "tenants/register_done.html", {"tenant_name": name})


# ---------------------------------------------------------------- tenant dashboard


# Never from the HTTP cache: a Back served from it would show yesterday's counters and re-arm
# a stale midnight rollover.
@method_decorator(never_cache, name="dispatch")
class DashboardView(PortalMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_system_admin:
            return redirect("tenants:system_tenants")
        now = timezone.now()
        left = selectors.dashboard_day_left(user=request.user, now=now)
        return render(
            request,
            "tenants/dashboard.html",
            {
                "stats": selectors.dashboard_stats(user=request.user, now=now),
                "stats_refresh_in": f"{left:.3f}",  # (a float would be localized: "900,000")
                "activity": selectors.recent_activity(user=request.user),
                "currency": request.user.tenant.currency,
                "hotspot_online": selectors.hotspot_online(user=request.user),
            },
        )


class HotspotOnlineStatsView(TenantMemberMixin, View):
    """JSON for the "Online on the hotspot" card, re-read on each hotspot event."""

    def get(self, request: HttpRequest) -> HttpResponse:
        stats = selectors.hotspot_online(user=request.user)
        flat = {"hotspot_online": stats["total"]}
        flat |= {f"router_{r['pk']}": r["online"] for r in stats["routers"]}
        return JsonResponse(flat)


class DashboardStatsView(TenantMemberMixin, View):
    """JSON counters the page's JS re-reads when an event arrives, and at the tenant's
    midnight: `refresh_in`, the seconds until then (notifications.js, data-refresh-in)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        now = timezone.now()
        stats = selectors.dashboard_stats(user=request.user, now=now)
        left = selectors.dashboard_day_left(user=request.user, now=now)
        return JsonResponse({**stats, "refresh_in": round(left, 3)})


# ---------------------------------------------------------------- tenant settings


class PaymentSecretView(TenantMemberMixin, View):
    """GET (tenant admins): the payment callback secret in full, for /settings/' "Reveal"."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_tenant_admin:
            raise Http403(_("Only the tenant's admins can see its payment secret."))
        response = JsonResponse({"payment_secret": self.tenant.payment_secret})
        response["Cache-Control"] = "no-store"
        return response


class PaymentSecretRotateView(TenantMemberMixin, View):
    """POST (tenant admins): a new payment callback secret; the old one stops working."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_tenant_admin:
            raise Http403(_("Only the tenant's admins can rotate its payment secret."))
        services.tenant_payment_secret_rotate(tenant=self.tenant, by=request.user)
        messages.success(
            request,
            _(
                "A new payment secret has been made. Give it to your payment provider: "
                "callbacks signed with the old one are now refused."
            ),
        )
        return redirect(reverse("tenants:settings") + "#payment-secret-card")


KEPT_IF_EMPTY = ("time_zone", "currency")


class SettingsView(TenantMemberMixin, View):
    template_name = "tenants/settings.html"

    def _can_edit(self) -> bool:
        return self.request.user.is_tenant_admin

    def get(self, request: HttpRequest) -> HttpResponse:
        tenant = self.tenant
        form = TenantSettingsForm(
            initial={f: getattr(tenant, f) for f in services.UPDATABLE_FIELDS}
        )
        return render(
            request,
            self.template_name,
            {
                "form": form,
                "tenant": tenant,
                "can_edit": self._can_edit(),
                **mpesa_settings_context(tenant, can_edit=self._can_edit()),
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        if not self._can_edit():
            raise Http403(_("Only the tenant's admins can change its settings."))
        tenant = self.tenant
        form = TenantSettingsForm(request.POST)
        if form.is_valid():
            try:
                data = {k: v for k, v in form.cleaned_data.items() if v or k not in KEPT_IF_EMPTY}
                services.tenant_update(tenant=tenant, data=data, by=request.user)
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, _("The settings have been saved."))
                return redirect("tenants:settings")
        return render(
            request,
            self.template_name,
            {
                "form": form,
                "tenant": tenant,
                "can_edit": True,
                **mpesa_settings_context(tenant, can_edit=True),
            },
            status=400,
        )


# ---------------------------------------------------------------- system admin


class SystemTenantsView(SystemAdminMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        status = request.GET.get("status", "")
        if status not in Tenant.Status.values:
            status = ""
        tenants = selectors.tenant_list(user=request.user, status=status or None).annotate(
            user_count=Count("users")
        )
        query = request.GET.copy()
        query.pop("row", None)
        extra = {"back": f"{request.path}?{query.urlencode()}" if query else request.path}
        live = live_row(request, tenants, "tenants/_tenant_row_live.html", extra)
        if live is not None:
            return live
        counts = selectors.status_counts(user=request.user)
        tabs = [("", "All", sum(counts.values()))] + [
            (value, label, counts.get(value, 0)) for value, label in Tenant.Status.choices
        ]
        page = paginate(request, tenants)
        # The Online column: the template's `online_counts` tag (notifications' presence tags).
        tenants = list(page.object_list)
        return render(
            request,
            "tenants/system_tenants.html",
            {"page": page, "tenants": tenants, "status": status, "tabs": tabs, **extra},
        )


class _TenantAction(SystemAdminMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        tenant = selectors.tenant_get(user=request.user, tenant_id=pk)
        back = request.POST.get("back") or reverse("tenants:system_tenants")
        if not back.startswith("/") or back.startswith("//"):
            back = reverse("tenants:system_tenants")
        try:
            message = self.act(request, tenant)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except DomainPermissionDenied:
            raise
        except DomainError as exc:
            return refuse_with_message(request, exc, back)
        else:
            messages.success(request, message)
        return redirect(back)

    def act(self, request: HttpRequest, tenant: Tenant) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class TenantApproveView(_TenantAction):
    def act(self, request: HttpRequest, tenant: Tenant) -> str:
        services.tenant_approve(tenant=tenant, by=request.user)
        return _("{name} has been approved.").format(name=tenant.name)


class TenantSuspendView(_TenantAction):
    def act(self, request: HttpRequest, tenant: Tenant) -> str:
        form = TenantSuspendForm(request.POST)
        if not form.is_valid():
            raise ValidationError("Give a reason to suspend a tenant.")
        services.tenant_suspend(tenant=tenant, reason=form.cleaned_data["reason"], by=request.user)
        return pgettext("tenant", "{name} has been suspended.").format(name=tenant.name)


class TenantReactivateView(_TenantAction):
    def act(self, request: HttpRequest, tenant: Tenant) -> str:
        services.tenant_reactivate(tenant=tenant, by=request.user)
        return _("{name} has been reactivated.").format(name=tenant.name)
