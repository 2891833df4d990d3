"""Tenant pages: public registration, dashboard counters, settings, system-admin actions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from payments.models import Payment
from tenants.models import Tenant
from tests.concurrency import run_concurrently
from tests.factories import HotspotUserFactory, PaymentFactory, TenantFactory

pytestmark = pytest.mark.django_db

REGISTRATION = {
    "name": "Delta Hotspots",
    "slug": "",
    "contact_email": "ops@delta.example",
    "contact_phone": "+254 700 123456",
    "admin_first_name": "Dee",
    "admin_last_name": "Elta",
    "admin_username": "delta-admin",
    "admin_password": "Str0ng-Delta-pw",
    "admin_password_confirm": "Str0ng-Delta-pw",
}


# ---------------------------------------------------------------- registration


def test_register_page_is_public_with_busy_state_and_no_socket(client):
    html = client.get("/register/").content.decode()
    assert 'id="register-form"' in html and "csrfmiddlewaretoken" in html
    assert 'data-busy-label="Registering…"' in html and 'id="register-progress"' in html
    assert '"live": false' in html


def test_register_success_shows_pending_approval(client):
    response = client.post("/register/", REGISTRATION, follow=True)
    assert response.redirect_chain[-1][0] == "/register/done/"
    html = response.content.decode()
    assert 'id="register-success"' in html and "pending approval" in html
    assert "Delta Hotspots" in html
    tenant = Tenant.objects.get(slug="delta-hotspots")
    assert tenant.status == Tenant.Status.PENDING
    assert User.objects.get(username="delta-admin").tenant == tenant


def test_register_double_post_creates_one_tenant_and_both_see_success(client):
    first = client.post("/register/", REGISTRATION)
    second = client.post("/register/", REGISTRATION)
    assert first.status_code == second.status_code == 302
    assert second["Location"] == "/register/done/"
    assert Tenant.objects.filter(name="Delta Hotspots").count() == 1
    assert User.objects.filter(username="delta-admin").count() == 1


def test_register_taken_short_name_by_someone_else_is_an_inline_error(client):
    TenantFactory(name="Delta", slug="delta-hotspots", status=Tenant.Status.PENDING)
    count = Tenant.objects.count()
    response = client.post("/register/", REGISTRATION)
    assert response.status_code == 400
    assert response.context["form"].errors["slug"] == ["That short name is already taken."]
    assert 'id="register-error"' in response.content.decode()
    assert Tenant.objects.count() == count
    assert not User.objects.filter(username="delta-admin").exists()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"name": ""}, "name"),
        ({"contact_email": "nope"}, "contact_email"),
        ({"contact_phone": "12"}, "contact_phone"),
        ({"slug": "bad slug!"}, "slug"),
        ({"admin_username": ""}, "admin_username"),
        ({"admin_password": "short", "admin_password_confirm": "short"}, "admin_password"),
        ({"admin_password_confirm": "different-pass-1"}, "admin_password_confirm"),
    ],
)
def test_register_bad_input_is_inline_and_changes_nothing(client, override, field):
    response = client.post("/register/", {**REGISTRATION, **override})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html and 'aria-invalid="true"' in html
    assert not Tenant.objects.exists() and not User.objects.exists()


def test_register_taken_admin_username_rolls_back_the_tenant(client, tenant_admin):
    count = Tenant.objects.count()
    response = client.post("/register/", {**REGISTRATION, "admin_username": "acme-admin"})
    assert response.status_code == 400
    assert response.context["form"].errors["admin_username"]
    assert Tenant.objects.count() == count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_register_two_concurrent_posts_create_one_tenant():
    """Two requests racing (a double click that reached the server twice)."""
    results = run_concurrently(lambda _: Client().post("/register/", REGISTRATION).status_code, 2)
    assert Tenant.objects.filter(name="Delta Hotspots").count() == 1
    assert sorted(results) == [302, 302]


# ---------------------------------------------------------------- dashboard


def test_dashboard_counts_only_own_tenant(client, tenant, tenant_admin, staff, other_tenant):
    now = timezone.now()
    done = PaymentFactory(package__tenant=tenant, package__price=Decimal("50.00"))
    Payment.objects.filter(pk=done.pk).update(status="completed", completed_at=now)
    PaymentFactory(package__tenant=tenant)  # pending
    old = PaymentFactory(package__tenant=tenant)
    Payment.objects.filter(pk=old.pk).update(
        status="completed", completed_at=now - timedelta(days=2)
    )
    other = PaymentFactory(package__tenant=other_tenant)
    Payment.objects.filter(pk=other.pk).update(status="completed", completed_at=now)
    HotspotUserFactory(package__tenant=tenant)
    HotspotUserFactory(package__tenant=tenant, status="disabled")
    HotspotUserFactory(package__tenant=other_tenant)
    client.force_login(tenant_admin)
    response = client.get("/")
    assert response.context["stats"] == {
        "users": 2,
        "active_hotspot_users": 1,
        "payments_today": 1,
        "revenue_today": "50.00",
        "pending_payments": 1,
    }
    html = response.content.decode()
    assert 'data-stat="revenue_today" data-value="50.00"' in html
    assert 'data-live-stats="/dashboard/stats/"' in html
    assert 'id="recent-activity"' in html and "Payment completed" in html
    stats = client.get("/dashboard/stats/").json()
    assert stats["payments_today"] == 1 and stats["users"] == 2


def test_system_admin_home_is_the_tenants_page(client, system_admin):
    client.force_login(system_admin)
    assert client.get("/")["Location"] == "/system/tenants/"


# ---------------------------------------------------------------- settings


def test_admin_saves_settings(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post(
        "/settings/",
        {"name": "Acme Wireless", "contact_email": "new@acme.example", "contact_phone": ""},
        follow=True,
    )
    assert "The settings have been saved." in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.name == "Acme Wireless"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "contact_email": "a@b.example", "contact_phone": ""}, "name"),
        ({"name": "X", "contact_email": "nope", "contact_phone": ""}, "contact_email"),
        ({"name": "X", "contact_email": "a@b.example", "contact_phone": "12"}, "contact_phone"),
    ],
)
def test_settings_bad_input_changes_nothing(client, tenant, tenant_admin, data, field):
    client.force_login(tenant_admin)
    before = Tenant.objects.values().get(pk=tenant.pk)
    response = client.post("/settings/", data)
    assert response.status_code == 400 and response.context["form"].errors[field]
    assert Tenant.objects.values().get(pk=tenant.pk) == before


def test_staff_see_settings_but_cannot_change(client, tenant, staff):
    client.force_login(staff)
    html = client.get("/settings/").content.decode()
    assert "Only your tenant's admins" in html and '<form method="post" class="card' not in html
    response = client.post("/settings/", {"name": "Hacked", "contact_email": "h@x.example"})
    assert response.status_code == 403
    tenant.refresh_from_db()
    assert tenant.name == "Acme WiFi"


# ---------------------------------------------------------------- system admin


def test_system_tenants_by_status_and_actions(client, system_admin, tenant):
    pending = TenantFactory(name="Gamma", slug="gamma", status=Tenant.Status.PENDING)
    client.force_login(system_admin)
    html = client.get("/system/tenants/", {"status": "pending"}).content.decode()
    assert 'data-tenant="gamma"' in html and 'data-tenant="acme"' not in html
    response = client.post(f"/system/tenants/{pending.pk}/approve/", follow=True)
    assert "Gamma has been approved." in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == Tenant.Status.ACTIVE

    response = client.post(
        f"/system/tenants/{tenant.pk}/suspend/", {"reason": "Unpaid"}, follow=True
    )
    assert "Acme WiFi has been suspended." in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED and tenant.suspension_reason == "Unpaid"

    response = client.post(f"/system/tenants/{tenant.pk}/reactivate/", follow=True)
    assert "Acme WiFi has been reactivated." in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_suspend_tenant_without_reason_changes_nothing(client, system_admin, tenant):
    client.force_login(system_admin)
    response = client.post(f"/system/tenants/{tenant.pk}/suspend/", {"reason": ""}, follow=True)
    assert "Give a reason" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_illegal_tenant_transition_is_explained(client, system_admin, tenant):
    client.force_login(system_admin)
    response = client.post(f"/system/tenants/{tenant.pk}/approve/", follow=True)
    assert "only a pending tenant can be approved" in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_unsafe_back_url_is_ignored(client, system_admin, tenant):
    client.force_login(system_admin)
    response = client.post(f"/system/tenants/{tenant.pk}/reactivate/", {"back": "//evil.example/"})
    assert response["Location"] == "/system/tenants/"


def test_tenant_users_cannot_use_system_pages(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    assert client.get("/system/tenants/").status_code == 403
    assert client.post(f"/system/tenants/{tenant.pk}/suspend/", {"reason": "x"}).status_code == 403
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
