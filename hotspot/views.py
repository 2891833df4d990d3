"""Packages and hotspot users of one tenant."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied as Http403
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from accounts.views import TenantMemberMixin, refuse_with_message
from config.errors import DomainError
from config.errors import PermissionDenied as DomainPermissionDenied

from . import selectors, services
from .forms import HotspotUserForm, PackageForm
from .models import HotspotUser, Package


class AdminOnlyMixin(TenantMemberMixin):
    """Staff see these pages; only the tenant's admins change packages or disable users."""

    def require_admin(self) -> None:
        if not self.request.user.is_tenant_admin:
            raise Http403("Only the tenant's admins can do that.")


class PackageListView(TenantMemberMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        packages = selectors.package_list(user=request.user).order_by("price", "name")
        return render(
            request,
            "hotspot/package_list.html",
            {"packages": packages, "can_manage": request.user.is_tenant_admin},
        )


class PackageFormView(AdminOnlyMixin, View):
    template_name = "hotspot/package_form.html"

    def get_package(self, pk: int | None) -> Package | None:
        if pk is None:
            return None
        return selectors.package_get(user=self.request.user, package_id=pk)

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        self.require_admin()
        package = self.get_package(pk)
        initial = {f: getattr(package, f) for f in services.PACKAGE_FIELDS} if package else None
        form = PackageForm(initial=initial)
        return render(request, self.template_name, {"form": form, "package": package})

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        self.require_admin()
        package = self.get_package(pk)
        form = PackageForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if package is None:
                    package = services.package_create(tenant=self.tenant, by=request.user, **data)
                    messages.success(request, f"Package {package.name} has been created.")
                else:
                    services.package_update(package=package, data=data, by=request.user)
                    messages.success(request, f"Package {data['name']} has been saved.")
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                return redirect("hotspot:package_list")
        return render(request, self.template_name, {"form": form, "package": package}, status=400)


class HotspotUserListView(TenantMemberMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        status = request.GET.get("status", "")
        if status not in HotspotUser.Status.values:
            status = ""
        query = (request.GET.get("q") or "").strip()[:100]
        rows = selectors.hotspot_user_list(user=request.user, search=query, status=status or None)
        return render(
            request,
            "hotspot/hotspot_user_list.html",
            {
                "hotspot_users": rows[:200],
                "status": status,
                "q": query,
                "statuses": HotspotUser.Status.choices,
                "now": timezone.now(),
                "can_disable": request.user.is_tenant_admin,
            },
        )


class HotspotUserCreateView(TenantMemberMixin, View):
    """Admins and staff (front desk) give a customer credentials for a package."""

    template_name = "hotspot/hotspot_user_form.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": HotspotUserForm(user=request.user)})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = HotspotUserForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if data.get("cash") and data["package"].price > 0:
                    from payments.services import payment_record_cash  # a counter sale

                    _, created = payment_record_cash(
                        tenant=self.tenant,
                        package=data["package"],
                        phone=data["phone"],
                        username=data["username"],
                        by=request.user,
                    )
                else:
                    created = services.hotspot_user_create(
                        tenant=self.tenant,
                        package=data["package"],
                        phone=data["phone"],
                        username=data["username"],
                        by=request.user,
                    )
            except ValidationError as exc:
                form.apply_service_error(exc)
            except DomainPermissionDenied:
                raise
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"Hotspot user {created.username} created; password {created.password}, "
                    f"valid until {timezone.localtime(created.expires_at):%Y-%m-%d %H:%M}.",
                )
                return redirect("hotspot:hotspot_user_list")
        return render(request, self.template_name, {"form": form}, status=400)


class HotspotUserDisableView(AdminOnlyMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.require_admin()
        target = selectors.hotspot_user_get(user=request.user, hotspot_user_id=pk)
        try:
            services.hotspot_user_disable(hotspot_user=target, by=request.user)
        except DomainPermissionDenied:
            raise
        except DomainError as exc:
            return refuse_with_message(request, exc, reverse("hotspot:hotspot_user_list"))
        messages.success(request, f"Hotspot user {target.username} has been disabled.")
        return redirect("hotspot:hotspot_user_list")
