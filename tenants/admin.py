"""Tenants in the Django admin: create/edit and approve/suspend/reactivate through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from accounts.admin_tools import ServiceAdminMixin, ServiceFormMixin, ask_reason_then, run_for_each
from config.money import time_zone_choices

from . import selectors, services
from .models import Tenant


class _ZoneChoice:
    """A select of every zone name (the model field is free text with a validator)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "time_zone" in self.fields:
            field = self.fields["time_zone"]
            self.fields["time_zone"] = forms.ChoiceField(
                choices=time_zone_choices,
                initial=field.initial,
                help_text=field.help_text,
                label=field.label,
            )
        for name in ("time_zone", "currency"):  # left out: the default (TIME_ZONE, CURRENCY)
            if name in self.fields and self.instance.pk is None:
                self.fields[name].required = False


class TenantAddForm(_ZoneChoice, ServiceFormMixin, forms.ModelForm):
    status = forms.ChoiceField(
        choices=[(Tenant.Status.ACTIVE, "Active"), (Tenant.Status.PENDING, "Pending approval")],
        initial=Tenant.Status.ACTIVE,
    )

    class Meta:
        model = Tenant
        fields = (*services.DETAIL_FIELDS, "status")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Leave empty to derive it from the name."

    def run_service(self) -> Tenant:
        data = self.cleaned_data
        return services.tenant_create(
            name=data["name"],
            slug=data.get("slug") or "",
            contact_email=data["contact_email"],
            contact_phone=data.get("contact_phone") or "",
            status=data["status"],
            time_zone=data.get("time_zone") or "",
            currency=data.get("currency") or "",
            by=self.acting_user,
        )


class TenantEditForm(_ZoneChoice, ServiceFormMixin, forms.ModelForm):
    class Meta:
        model = Tenant
        fields = services.UPDATABLE_FIELDS

    def run_service(self) -> Tenant:
        data = {
            f: self.cleaned_data[f] for f in services.UPDATABLE_FIELDS if f in self.changed_data
        }
        return services.tenant_update(tenant=self.instance, data=data, by=self.acting_user)


# Set only by the life-cycle actions (services.tenant_approve/suspend/reactivate), and when.
_LIFE_CYCLE = (
    "status",
    "suspension_reason",
    "approved_at",
    "approved_by",
    "suspended_at",
    "suspended_by",
)
_DATES = ("created_at", "updated_at")


@admin.register(Tenant)
class TenantAdmin(ServiceAdminMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "status",
        "contact_email",
        "contact_phone",
        "time_zone",
        "currency",
        "user_count",
        "online",
        "created_at",
        "approved_at",
        "suspended_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("name", "slug", "contact_email", "contact_phone")
    ordering = ("name",)
    date_hierarchy = "created_at"
    actions = ["approve_tenants", "suspend_tenants", "reactivate_tenants"]
    add_fieldsets = ((None, {"fields": TenantAddForm.Meta.fields}),)
    fieldsets = (
        (None, {"fields": ("name", "slug", "contact_email", "contact_phone")}),
        ("Time zone and money", {"fields": ("time_zone", "currency")}),
        ("Status (use the Approve / Suspend / Reactivate actions)", {"fields": _LIFE_CYCLE}),
        ("Dates", {"fields": _DATES}),
    )
    change_readonly = ("slug", *_LIFE_CYCLE, *_DATES)  # set by the services, never typed in

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return (
            selectors.tenant_list(user=request.user)
            .select_related("approved_by", "suspended_by")
            .annotate(user_total=Count("users", distinct=True))
        )

    @admin.display(description="Users", ordering="user_total")
    def user_count(self, obj: Tenant) -> int:
        return obj.user_total

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """Read the page's online counts in one presence call, not one per row."""
        changelist = super().get_changelist_instance(request)
        counts = selectors.online_counts([t.pk for t in changelist.result_list])
        for tenant in changelist.result_list:
            tenant.online_now = counts.get(tenant.pk, "–") if counts is not None else "–"
        return changelist

    @admin.display(description="Online")
    def online(self, obj: Tenant) -> int | str:
        """People signed in now (read when the list renders; not live here)."""
        return getattr(obj, "online_now", "–")

    def get_fieldsets(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple:
        return () if obj is None else self.change_readonly

    def get_form(self, request: HttpRequest, obj: Tenant | None = None, **kwargs: Any) -> Any:
        kwargs["form"] = TenantAddForm if obj is None else TenantEditForm
        return super().get_form(request, obj, **kwargs)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return False  # tenants are suspended, never deleted (payments and users hang off them)

    @admin.action(description="Approve selected pending tenants")
    def approve_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda tenant: services.tenant_approve(tenant=tenant, by=request.user),
            "Approved",
        )

    @admin.action(description="Suspend selected tenants (asks for a reason)")
    def suspend_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> Any:
        return ask_reason_then(
            self,
            request,
            queryset,
            action="suspend_tenants",
            title="Suspend tenants",
            call=lambda tenant, reason: services.tenant_suspend(
                tenant=tenant, reason=reason, by=request.user
            ),
            done="Suspended",
        )

    @admin.action(description="Reactivate selected suspended tenants")
    def reactivate_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda tenant: services.tenant_reactivate(tenant=tenant, by=request.user),
            "Reactivated",
        )
