"""The admin site is the system admins' workplace: nobody else gets in, blocked users neither."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from config.throttling import throttle_posts

from .forms import SignInLockMixin
from .services import login_block_reason


class PlatformAdminAuthenticationForm(SignInLockMixin, AdminAuthenticationForm):
    """Admin sign-in that applies THE sign-in rule (login_block_reason) and the role."""

    def confirm_login_allowed(self, user: Any) -> None:
        reason = login_block_reason(user)
        if reason:
            raise ValidationError(reason, code="blocked")
        super().confirm_login_allowed(user)  # active and is_staff
        if not getattr(user, "is_system_admin", False):
            raise ValidationError(
                "This site is for the platform's system admins only.", code="not_system_admin"
            )


class PlatformAdminSite(admin.AdminSite):
    site_header = "Hotspot Billing: platform admin"
    site_title = "Hotspot Billing admin"
    index_title = "Tenants, accounts, packages and payments"
    login_form = PlatformAdminAuthenticationForm

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        """Django's admin login, its POSTs throttled per client address (scope `admin_login`)."""
        return throttle_posts("admin_login")(super().login)(request, extra_context)

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return (
            super().has_permission(request)
            and getattr(user, "is_system_admin", False)
            and login_block_reason(user) is None
        )
