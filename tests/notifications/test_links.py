"""Where an inbox item leads: its record's page, as the reader may open it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from notifications.links import record_label, record_url


def event(name: str, **data):
    return SimpleNamespace(name=name, data=data)


@pytest.mark.parametrize(
    ("reader", "item", "url", "label"),
    [
        (
            "staff",
            event("PaymentCompleted", payment_id=7, reference="QK 1&2"),
            "/payments/?q=QK+1%262",
            "View payment",
        ),
        (
            "system_admin",
            event("PaymentFailed", payment_id=7, reference="R"),
            "/admin/payments/payment/7/change/",
            "View payment",
        ),
        (
            "staff",
            event("HotspotUserExpired", hotspot_user_id=3, username="hs-1"),
            "/hotspot-users/?q=hs-1",
            "View hotspot user",
        ),
        (
            "tenant_admin",
            event("PackageUpdated", package_id=4),
            "/packages/4/edit/",
            "View package",
        ),
        ("staff", event("PackageUpdated", package_id=4), "/packages/", "View package"),
        ("tenant_admin", event("UserCreated", user_id=99), "/users/99/edit/", "View user"),
        ("staff", event("UserCreated", user_id=99), "/users/", "View user"),
        (
            "system_admin",
            event("TenantRegistered", tenant_id=5, status="pending"),
            "/system/tenants/?status=pending",
            "View tenant",
        ),
        (
            "tenant_admin",
            event("TenantUpdated", tenant_id=5),
            "/settings/",
            "Organisation settings",
        ),
        ("staff", event("UserDeleted", user_id=99), "", ""),
        ("staff", event("SystemNotification", tenant_id=5, user_id=None), "", ""),
    ],
)
def test_record_links(request, reader, item, url, label):
    user = request.getfixturevalue(reader)
    assert record_url(item, user) == url
    assert record_label(item, user) == label


def test_an_event_about_me_leads_to_my_profile(staff):
    assert record_url(event("PasswordChanged", user_id=staff.pk), staff) == "/accounts/profile/"
