"""Where a notification leads: the page of the record it is about, for the person reading it.

Only pages the reader may open are linked (a tenant's staff get the list, its admins the edit
page, a system admin the Django admin); an event about a deleted or unknown record links nowhere.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

TENANT_EVENTS = {
    "TenantCreated",
    "TenantUpdated",
    "TenantApproved",
    "TenantSuspended",
    "TenantReactivated",
    "TenantRegistered",
}
USER_EVENTS = {
    "UserCreated",
    "UserUpdated",
    "PasswordChanged",
    "AccountSuspended",
    "AccountActivated",
}
PAYMENT_EVENTS = {"PaymentInitiated", "PaymentCompleted", "PaymentFailed"}
HOTSPOT_USER_EVENTS = {"HotspotUserCreated", "HotspotUserExpired", "HotspotUserDisabled"}
PACKAGE_EVENTS = {"PackageCreated", "PackageUpdated"}


def _reverse(name: str, *args: Any, query: dict[str, Any] | None = None) -> str:
    try:
        url = reverse(name, args=args)
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(query)}" if query else url


def record_url(event: Any, user: Any) -> str:
    """The URL of the record `event` is about, as `user` may see it ("" if none)."""
    data = event.data or {}
    name = event.name
    system = getattr(user, "is_system_admin", False)
    admin = getattr(user, "is_tenant_admin", False)
    if name in PAYMENT_EVENTS and data.get("payment_id"):
        if system:
            return _reverse("admin:payments_payment_change", data["payment_id"])
        return _reverse("payments:payment_list", query={"q": data.get("reference", "")})
    if name in HOTSPOT_USER_EVENTS and data.get("hotspot_user_id"):
        if system:
            return _reverse("admin:hotspot_hotspotuser_change", data["hotspot_user_id"])
        return _reverse("hotspot:hotspot_user_list", query={"q": data.get("username", "")})
    if name in PACKAGE_EVENTS and data.get("package_id"):
        if system:
            return _reverse("admin:hotspot_package_change", data["package_id"])
        if admin:
            return _reverse("hotspot:package_edit", data["package_id"])
        return _reverse("hotspot:package_list")
    if name in USER_EVENTS and data.get("user_id"):
        if data["user_id"] == user.pk:
            return _reverse("accounts:profile")
        if system:
            return _reverse("admin:accounts_user_change", data["user_id"])
        if admin:
            return _reverse("accounts:user_edit", data["user_id"])
        return _reverse("accounts:user_list")
    if name in TENANT_EVENTS and data.get("tenant_id"):
        if system:
            return _reverse("tenants:system_tenants", query={"status": data.get("status", "")})
        return _reverse("tenants:settings")
    return ""
