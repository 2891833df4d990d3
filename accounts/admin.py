"""Accounts in the Django admin: every add/change/delete/password/suspend goes through services."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import SetPasswordMixin, UserChangeForm
from django.http import HttpRequest, HttpResponse

from tenants.models import Tenant

from . import selectors, services
from .admin_tools import ServiceAdminMixin, ServiceFormMixin, ask_reason_then, run_for_each
from .models import User
from .utils import mask_phone

# The password view builds its form without the request; the acting user travels here instead.
_acting_user: ContextVar[Any] = ContextVar("admin_acting_user", default=None)


class UserAddForm(ServiceFormMixin, SetPasswordMixin, forms.ModelForm):
    password1, password2 = SetPasswordMixin.create_password_fields()
    service_field_names = {"password": "password1"}

    class Meta:
        model = User
        fields = ("username", "role", "tenant", "email", "first_name", "last_name", "phone")

    def clean(self) -> dict[str, Any]:
        self.validate_passwords()  # both given and equal; strength is the service's check
        cleaned = super().clean()
        role, tenant = cleaned.get("role"), cleaned.get("tenant")
        if role == User.Role.SYSTEM_ADMIN and tenant is not None:
            self.add_error("tenant", "System admins do not belong to a tenant.")
        elif role and role != User.Role.SYSTEM_ADMIN and tenant is None:
            self.add_error("tenant", "Tenant admins and staff need a tenant.")
        return cleaned

    def run_service(self) -> User:
        data = self.cleaned_data
        return services.user_create(
            username=data["username"],
            password=data["password1"],
            role=data["role"],
            tenant=data.get("tenant"),
            email=data.get("email", ""),
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            phone=data.get("phone", ""),
            by=self.acting_user,
        )


class UserEditForm(ServiceFormMixin, UserChangeForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields.get("role")
        if role is not None:  # tenant users move between tenant roles only
            role.choices = [c for c in role.choices if c[0] != User.Role.SYSTEM_ADMIN]

    def run_service(self) -> User:
        data = {
            field: self.cleaned_data[field]
            for field in services.UPDATABLE_FIELDS
            if field in self.changed_data
        }
        return services.user_update(user=self.instance, data=data, by=self.acting_user)


class UserPasswordForm(SetPasswordMixin, forms.Form):
    """Set a user's password through accounts.services (validated, sends password_changed)."""

    required_css_class = "required"
    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        self.validate_passwords()
        self.validate_password_for_user(self.user)
        cleaned = super().clean()
        cleaned["set_usable_password"] = True  # Django's view asks; we never unset passwords
        return cleaned

    def save(self, commit: bool = True) -> User:
        self.user = services.user_change_password(
            user=self.user, new_password=self.cleaned_data["password1"], by=_acting_user.get()
        )
        return self.user

    @property
    def changed_data(self) -> list[str]:
        return ["password"] if super().changed_data else []


@admin.register(User)
class UserAdmin(ServiceAdminMixin, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    change_password_form = UserPasswordForm
    list_display = (
        "username",
        "display_name",
        "role",
        "tenant",
        "status",
        "locked_until",
        "email",
        "shown_phone",
        "last_login",
    )
    list_filter = ("role", "status", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("username", "first_name", "last_name", "email", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("username",)
    actions = ["suspend_users", "activate_users"]
    fieldsets = (
        (None, {"fields": ("username", "password", "role", "tenant")}),
        ("Profile", {"fields": ("first_name", "last_name", "email", "phone")}),
        (
            "Status (use the Suspend / Activate actions)",
            {"fields": ("status", "suspension_reason", "suspended_until", "failed_login_count")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "role", "tenant", "password1", "password2"),
            },
        ),
        ("Profile", {"fields": ("first_name", "last_name", "email", "phone")}),
    )
    status_fields = (
        "username",
        "tenant",
        "status",
        "suspension_reason",
        "suspended_until",
        "failed_login_count",
        "last_login",
        "date_joined",
    )

    @admin.display(description="Phone")
    def shown_phone(self, obj: User) -> str:
        return mask_phone(obj.phone)

    @admin.display(description="Locked until", ordering="suspended_until")
    def locked_until(self, obj: User) -> Any:
        return obj.suspended_until if obj.is_suspended else None

    def get_queryset(self, request: HttpRequest) -> Any:
        return selectors.user_list(user=request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple:
        if obj is None:
            return ()
        if obj.is_system_admin:
            return (*self.status_fields, "role")
        return self.status_fields

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletes go one by one through user_delete
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.pk == request.user.pk:
            return False  # user_delete refuses it; do not offer it
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.user_delete(user=obj, by=request.user)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        token = _acting_user.set(request.user)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _acting_user.reset(token)

    @admin.action(description="Suspend selected users (asks for a reason)")
    def suspend_users(self, request: HttpRequest, queryset: Any) -> Any:
        return ask_reason_then(
            self,
            request,
            queryset,
            action="suspend_users",
            title="Suspend users",
            call=lambda user, reason: services.user_suspend(
                user=user, reason=reason, by=request.user
            ),
            done="Suspended",
        )

    @admin.action(description="Activate selected users")
    def activate_users(self, request: HttpRequest, queryset: Any) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda user: services.user_activate(user=user, by=request.user),
            "Activated",
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            kwargs["queryset"] = Tenant.objects.for_user(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
