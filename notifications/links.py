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
    return record_link(event, user)[0]


LABELS = {
    "payment": "View payment",
    "hotspot_user": "View hotspot user",
    "package": "View package",
    "user": "View user",
    "profile": "Your profile",
    "tenant": "View tenant",
    "settings": "Organisation settings",
}


def record_label(event: Any, user: Any) -> str:
    """The words of the link to the record (e.g. "View payment"), "" if none."""
    return LABELS.get(record_link(event, user)[1], "")


def record_link(event: Any, user: Any) -> tuple[str, str]:
    """(URL, kind) of the record `event` is about, as `user` may see it (("", "") if none)."""
    url, kind = _link(event, user)
    return (url, kind) if url else ("", "")


def _link(event: Any, user: Any) -> tuple[str, str]:
    data = event.data or {}
    name = event.name
    system = getattr(user, "is_system_admin", False)
    admin = getattr(user, "is_tenant_admin", False)
    if name in PAYMENT_EVENTS and data.get("payment_id"):
        if system:
            return _reverse("admin:payments_payment_change", data["payment_id"]), "payment"
        return _reverse("payments:payment_list", query={"q": data.get("reference", "")}), "payment"
    if name in HOTSPOT_USER_EVENTS and data.get("hotspot_user_id"):
        if system:
            return _reverse(
                "admin:hotspot_hotspotuser_change", data["hotspot_user_id"]
            ), "hotspot_user"
        return _reverse(
            "hotspot:hotspot_user_list", query={"q": data.get("username", "")}
        ), "hotspot_user"
    if name in PACKAGE_EVENTS and data.get("package_id"):
        if system:
            return _reverse("admin:hotspot_package_change", data["package_id"]), "package"
        if admin:
            return _reverse("hotspot:package_edit", data["package_id"]), "package"
        return _reverse("hotspot:package_list"), "package"
    if name in USER_EVENTS and data.get("user_id"):
        if data["user_id"] == user.pk:
            return _reverse("accounts:profile"), "profile"
        if system:
            return _reverse("admin:accounts_user_change", data["user_id"]), "user"
        if admin:
            return _reverse("accounts:user_edit", data["user_id"]), "user"
        return _reverse("accounts:user_list"), "user"
    if name in TENANT_EVENTS and data.get("tenant_id"):
        if system:
            return _reverse(
                "tenants:system_tenants", query={"status": data.get("status", "")}
            ), "tenant"
        return _reverse("tenants:settings"), "settings"
    return "", ""
