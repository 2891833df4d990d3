"""Packages and hotspot users in the Django admin, changed only through hotspot.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_tools import (
    ReadOnlyAdminMixin,
    ServiceAdminMixin,
    ServiceFormMixin,
    run_for_each,
)
from tenants.models import Tenant

from . import selectors, services
from .models import HotspotSession, HotspotUser, Package, Router


class PackageAddForm(ServiceFormMixin, forms.ModelForm):
    class Meta:
        model = Package
        fields = ("tenant", *services.PACKAGE_FIELDS)

    def run_service(self) -> Package:
        data = self.cleaned_data
        return services.package_create(
            tenant=data["tenant"],
            name=data["name"],
            price=data["price"],
            duration_minutes=data["duration_minutes"],
            data_limit_mb=data.get("data_limit_mb"),
            speed_limit=data.get("speed_limit") or "",
            is_active=data.get("is_active", True),
            by=self.acting_user,
        )


class PackageEditForm(ServiceFormMixin, forms.ModelForm):
    class Meta:
        model = Package
        fields = services.PACKAGE_FIELDS

    def run_service(self) -> Package:
        data = {f: self.cleaned_data[f] for f in services.PACKAGE_FIELDS if f in self.changed_data}
        return services.package_update(package=self.instance, data=data, by=self.acting_user)


@admin.register(Package)
class PackageAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "tenant",
        "price",
        "currency",
        "duration_minutes",
        "data_limit_mb",
        "speed_limit",
        "is_active",
    )
    list_filter = ("is_active", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Package]:
        return selectors.package_list(user=request.user)

    def get_form(self, request: HttpRequest, obj: Package | None = None, **kwargs: Any) -> Any:
        kwargs["form"] = PackageAddForm if obj is None else PackageEditForm
        kwargs["fields"] = None
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Package | None = None) -> Any:
        if obj is None:
            return ("tenant", *services.PACKAGE_FIELDS)
        return ("tenant", *services.PACKAGE_FIELDS, "currency", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Package | None = None) -> tuple:
        return () if obj is None else ("tenant", "currency", "created_at", "updated_at")

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Package | None = None) -> bool:
        return False  # payments keep pointing at packages; take one off sale instead

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs["queryset"] = Tenant.objects.for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class HotspotUserAddForm(ServiceFormMixin, forms.ModelForm):
    class Meta:
        model = HotspotUser
        fields = ("tenant", "package", "phone", "username", "password")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("username", "password", "phone"):
            if name in self.fields:  # absent on the read-only detail page
                self.fields[name].required = False
                if name != "phone":
                    self.fields[name].help_text = "Leave empty to generate one."

    def run_service(self) -> HotspotUser:
        data = self.cleaned_data
        return services.hotspot_user_create(
            tenant=data["tenant"],
            package=data["package"],
            phone=data.get("phone") or "",
            username=data.get("username") or "",
            password=data.get("password") or "",
            by=self.acting_user,
        )


@admin.register(HotspotUser)
class HotspotUserAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = HotspotUserAddForm
    list_display = (
        "username",
        "tenant",
        "package",
        "masked_phone",
        "status",
        "starts_at",
        "expires_at",
        "data_used_mb",
    )
    list_filter = ("status", ("tenant", admin.RelatedOnlyFieldListFilter), "expires_at")
    search_fields = ("username", "phone", "tenant__name", "payment__provider_reference")
    list_select_related = ("tenant", "package")
    date_hierarchy = "created_at"
    actions = ["disable_hotspot_users"]
    view_fields = (
        "username",
        "password",
        "tenant",
        "package",
        "masked_phone",
        "payment",
        "status",
        "starts_at",
        "expires_at",
        "data_used_mb",
        "created_at",
        "updated_at",
    )

    @admin.display(description="Phone")
    def masked_phone(self, obj: HotspotUser) -> str:
        return obj.masked_phone

    def get_queryset(self, request: HttpRequest) -> QuerySet[HotspotUser]:
        return selectors.hotspot_user_list(user=request.user)

    def get_fields(self, request: HttpRequest, obj: HotspotUser | None = None) -> Any:
        if obj is None:
            return ("tenant", "package", "phone", "username", "password")
        return self.view_fields

    def get_readonly_fields(self, request: HttpRequest, obj: HotspotUser | None = None) -> tuple:
        return () if obj is None else self.view_fields

    def has_change_permission(self, request: HttpRequest, obj: HotspotUser | None = None) -> bool:
        return False  # only the services change them: disable (action) and expiry (command)

    def has_delete_permission(self, request: HttpRequest, obj: HotspotUser | None = None) -> bool:
        return False

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs["queryset"] = Tenant.objects.for_user(request.user).filter(
                status=Tenant.Status.ACTIVE
            )
        elif db_field.name == "package":
            kwargs["queryset"] = Package.objects.for_user(request.user).filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.action(description="Disable selected hotspot users")
    def disable_hotspot_users(self, request: HttpRequest, queryset: QuerySet[HotspotUser]) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda hotspot_user: services.hotspot_user_disable(
                hotspot_user=hotspot_user, by=request.user
            ),
            "Disabled",
        )


class RouterAddForm(ServiceFormMixin, forms.ModelForm):
    class Meta:
        model = Router
        fields = ("tenant", *services.ROUTER_FIELDS)

    def run_service(self) -> Router:
        data = self.cleaned_data
        return services.router_create(
            tenant=data["tenant"],
            name=data["name"],
            address=data["address"],
            secret=data["secret"],
            coa_port=data.get("coa_port") or 3799,
            by=self.acting_user,
        )


class RouterEditForm(ServiceFormMixin, forms.ModelForm):
    class Meta:
        model = Router
        fields = services.ROUTER_FIELDS

    def run_service(self) -> Router:
        data = {f: self.cleaned_data[f] for f in services.ROUTER_FIELDS if f in self.changed_data}
        return services.router_update(router=self.instance, data=data, by=self.acting_user)


@admin.register(Router)
class RouterAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("name", "tenant", "address", "coa_port", "last_seen")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "address", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Router]:
        return selectors.router_list(user=request.user)

    def get_form(self, request: HttpRequest, obj: Router | None = None, **kwargs: Any) -> Any:
        kwargs["form"] = RouterAddForm if obj is None else RouterEditForm
        kwargs["fields"] = None
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Router | None = None) -> Any:
        if obj is None:
            return ("tenant", *services.ROUTER_FIELDS)
        return ("tenant", *services.ROUTER_FIELDS, "last_seen", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Router | None = None) -> tuple:
        return () if obj is None else ("tenant", "last_seen", "created_at", "updated_at")

    def delete_model(self, request: HttpRequest, obj: Router) -> None:
        services.router_delete(router=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Router]) -> None:
        for router in queryset:
            services.router_delete(router=router, by=request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs["queryset"] = Tenant.objects.for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(HotspotSession)
class HotspotSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read only: sessions are what the routers reported."""

    deletable = False

    list_display = (
        "username",
        "tenant",
        "router",
        "status",
        "mac",
        "ip",
        "started_at",
        "input_octets",
        "output_octets",
        "disconnect",
    )
    list_filter = ("status", "disconnect", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("username", "mac", "acct_session_id")
    list_select_related = ("tenant", "router")

    def get_queryset(self, request: HttpRequest) -> QuerySet[HotspotSession]:
        return selectors.hotspot_session_list(user=request.user)
