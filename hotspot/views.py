"""Packages and hotspot users of one tenant."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied as Http403
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from accounts.views import TenantMemberMixin, refuse_with_message
from config.errors import DomainError
from config.errors import PermissionDenied as DomainPermissionDenied
from config.pages import live_row, paginate

from . import selectors, services
from .forms import HotspotUserForm, PackageForm, RouterForm
from .models import HotspotSession, HotspotUser, Package, Router


class AdminOnlyMixin(TenantMemberMixin):
    """Staff see these pages; only the tenant's admins change packages or disable users."""

    def require_admin(self) -> None:
        if not self.request.user.is_tenant_admin:
            raise Http403(_("Only the tenant's admins can do that."))


class PackageListView(TenantMemberMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        packages = selectors.package_list(user=request.user).order_by("price", "name", "pk")
        page = paginate(request, packages)
        return render(
            request,
            "hotspot/package_list.html",
            {
                "page": page,
                "packages": page.object_list,
                "can_manage": request.user.is_tenant_admin,
            },
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
                    messages.success(
                        request, _("Package {name} has been created.").format(name=package.name)
                    )
                else:
                    services.package_update(package=package, data=data, by=request.user)
                    messages.success(
                        request, _("Package {name} has been saved.").format(name=data["name"])
                    )
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
        extra = {"now": timezone.now(), "can_disable": request.user.is_tenant_admin}
        if (row := live_row(request, rows, "hotspot/_hotspot_user_row.html", extra)) is not None:
            return row
        page = paginate(request, rows)
        return render(
            request,
            "hotspot/hotspot_user_list.html",
            {
                "page": page,
                "hotspot_users": page.object_list,
                "status": status,
                "q": query,
                "statuses": HotspotUser.Status.choices,
                **extra,
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

                    _payment, created = payment_record_cash(
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
                    _(
                        "Hotspot user {username} created; password {password}, valid until "
                        "{expires}."
                    ).format(
                        username=created.username,
                        password=created.password,
                        expires=f"{timezone.localtime(created.expires_at):%Y-%m-%d %H:%M}",
                    ),
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
        messages.success(
            request, _("Hotspot user {name} has been disabled.").format(name=target.username)
        )
        return redirect("hotspot:hotspot_user_list")


class RouterListView(TenantMemberMixin, View):
    """The tenant's routers; staff read only (the secret is shown to admins only)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        routers = selectors.router_list(user=request.user)
        return render(
            request,
            "hotspot/router_list.html",
            {"routers": routers, "can_manage": request.user.is_tenant_admin},
        )


class RouterFormView(AdminOnlyMixin, View):
    template_name = "hotspot/router_form.html"

    def get_router(self, pk: int | None) -> Router | None:
        if pk is None:
            return None
        return selectors.router_get(user=self.request.user, router_id=pk)

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        self.require_admin()
        router = self.get_router(pk)
        initial = {f: getattr(router, f) for f in services.ROUTER_FIELDS} if router else None
        form = RouterForm(initial=initial)
        return render(request, self.template_name, {"form": form, "router": router})

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        self.require_admin()
        router = self.get_router(pk)
        form = RouterForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if router is None:
                    router = services.router_create(tenant=self.tenant, by=request.user, **data)
                    messages.success(
                        request, _("Router {name} has been added.").format(name=router.name)
                    )
                else:
                    services.router_update(router=router, data=data, by=request.user)
                    messages.success(
                        request, _("Router {name} has been saved.").format(name=data["name"])
                    )
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                return redirect("hotspot:router_list")
        return render(request, self.template_name, {"form": form, "router": router}, status=400)


class RouterDeleteView(AdminOnlyMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.require_admin()
        router = selectors.router_get(user=request.user, router_id=pk)
        services.router_delete(router=router, by=request.user)
        messages.success(request, _("Router {name} has been removed.").format(name=router.name))
        return redirect("hotspot:router_list")


class HotspotSessionListView(TenantMemberMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        status = request.GET.get("status", "")
        if status not in HotspotSession.Status.values:
            status = ""
        rows = selectors.hotspot_session_list(user=request.user, status=status or None)
        if (row := live_row(request, rows, "hotspot/_hotspot_session_row.html", {})) is not None:
            return row
        page = paginate(request, rows)
        return render(
            request,
            "hotspot/hotspot_session_list.html",
            {"page": page, "status": status, "statuses": HotspotSession.Status.choices},
        )
