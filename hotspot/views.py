"""Packages and hotspot users of one tenant."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied as Http403
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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


class _ServiceFormView(AdminOnlyMixin, View):
    """Add (no pk) or edit one of the tenant's objects; every change goes through its services."""

    template_name: str
    form_class: type[PackageForm | RouterForm]
    fields: tuple[str, ...]  # what the edit form starts from
    context_name: str  # the object's name in the template
    success_url: str
    created: Promise  # messages with {name}
    saved: Promise

    def get_object(self, pk: int) -> Any:
        raise NotImplementedError

    def create(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def update(self, obj: Any, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def page(self, obj: Any, form: Any, status: int = 200) -> HttpResponse:
        context = {"form": form, self.context_name: obj}
        return render(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        self.require_admin()
        obj = None if pk is None else self.get_object(pk)
        initial = {f: getattr(obj, f) for f in self.fields} if obj else None
        return self.page(obj, self.form_class(initial=initial))

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        self.require_admin()
        obj = None if pk is None else self.get_object(pk)
        form = self.form_class(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if obj is None:
                    obj = self.create(data)
                    done = self.created.format(name=obj.name)
                else:
                    self.update(obj, data)
                    done = self.saved.format(name=data["name"])
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, done)
                return redirect(self.success_url)
        return self.page(obj, form, status=400)


class PackageFormView(_ServiceFormView):
    template_name = "hotspot/package_form.html"
    form_class = PackageForm
    fields = services.PACKAGE_FIELDS
    context_name = "package"
    success_url = "hotspot:package_list"
    created = gettext_lazy("Package {name} has been created.")
    saved = gettext_lazy("Package {name} has been saved.")

    def get_object(self, pk: int) -> Package:
        return selectors.package_get(user=self.request.user, package_id=pk)

    def create(self, data: dict[str, Any]) -> Package:
        return services.package_create(tenant=self.tenant, by=self.request.user, **data)

    def update(self, obj: Package, data: dict[str, Any]) -> None:
        services.package_update(package=obj, data=data, by=self.request.user)


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


class RouterFormView(_ServiceFormView):
    template_name = "hotspot/router_form.html"
    form_class = RouterForm
    fields = services.ROUTER_FIELDS
    context_name = "router"
    success_url = "hotspot:router_list"
    created = gettext_lazy("Router {name} has been added.")
    saved = gettext_lazy("Router {name} has been saved.")

    def get_object(self, pk: int) -> Router:
        return selectors.router_get(user=self.request.user, router_id=pk)

    def create(self, data: dict[str, Any]) -> Router:
        return services.router_create(tenant=self.tenant, by=self.request.user, **data)

    def update(self, obj: Router, data: dict[str, Any]) -> None:
        services.router_update(router=obj, data=data, by=self.request.user)


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
