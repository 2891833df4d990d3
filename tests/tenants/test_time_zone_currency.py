"""A tenant's time zone and currency: defaults, validation, who edits them (/settings/, the
Django admin, through tenant_update), and what its people then see (pages in its zone, money in
its currency; system admins keep TIME_ZONE).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings
from django.utils import timezone

from config.checks import currency_and_time_zone
from config.errors import PermissionDenied
from hotspot.models import Package
from payments.models import Payment
from tenants import services
from tenants.middleware import TenantTimeZoneMiddleware
from tenants.models import Tenant
from tests.admin_helpers import csrf_token
from tests.factories import (
    PackageFactory,
    PaymentFactory,
    SystemAdminFactory,
    TenantAdminFactory,
    TenantFactory,
)

pytestmark = pytest.mark.django_db

LATE = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 23:30 in Lagos, 01:30 next day in Nairobi


@pytest.fixture
def lagos():
    return TenantFactory(slug="lagos", name="Lagos WiFi", time_zone="Africa/Lagos", currency="NGN")


def test_new_tenants_start_with_time_zone_and_currency_settings(system_admin, settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    settings.CURRENCY = "KES"
    first = services.tenant_create(name="One", contact_email="a@x.example", by=system_admin)
    assert (first.time_zone, first.currency) == ("Africa/Nairobi", "KES")
    settings.CURRENCY = "UGX"
    second = services.tenant_create(name="Two", contact_email="b@x.example", by=system_admin)
    assert second.currency == "UGX"
    third = services.tenant_create(
        name="Three",
        contact_email="c@x.example",
        by=system_admin,
        time_zone="Africa/Accra",
        currency="ghs",
    )
    assert (third.time_zone, third.currency) == ("Africa/Accra", "GHS")


@pytest.mark.parametrize(
    "data, field",
    [
        ({"time_zone": "Africa/Atlantis"}, "time_zone"),
        ({"time_zone": "EAT"}, "time_zone"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "KSH"}, "currency"),
    ],
)
def test_unknown_zone_or_currency_is_refused_and_changes_nothing(tenant, tenant_admin, data, field):
    before = (tenant.time_zone, tenant.currency)  # TIME_ZONE's and CURRENCY's, whatever they are
    with pytest.raises(ValidationError) as caught:
        services.tenant_update(tenant=tenant, data=data, by=tenant_admin)
    assert field in caught.value.message_dict
    tenant.refresh_from_db()
    assert (tenant.time_zone, tenant.currency) == before


def test_staff_cannot_change_the_currency(tenant, staff):
    with pytest.raises(PermissionDenied):
        services.tenant_update(tenant=tenant, data={"currency": "NGN"}, by=staff)


def test_a_new_currency_reprices_the_packages_and_keeps_old_payments(
    tenant, tenant_admin, signal_log
):
    package = PackageFactory(tenant=tenant, price=Decimal("500.00"))
    old = PaymentFactory(package=package)
    other = PackageFactory(price=Decimal("20.00"))  # another tenant's
    services.tenant_update(
        tenant=tenant, data={"currency": "NGN", "time_zone": "Africa/Lagos"}, by=tenant_admin
    )
    tenant.refresh_from_db()
    assert (tenant.currency, tenant.time_zone) == ("NGN", "Africa/Lagos")
    package.refresh_from_db()
    assert (package.currency, package.price) == ("NGN", Decimal("500.00"))
    assert Package.objects.get(pk=other.pk).currency == "KES"
    assert Payment.objects.get(pk=old.pk).currency == "KES"  # made in KES, stays so
    names = [name for name, _ in signal_log]
    assert names == ["package_updated", "tenant_updated"]
    assert signal_log[0][1]["changed"] == ["currency"]
    assert sorted(signal_log[1][1]["changed"]) == ["currency", "time_zone"]


def test_tenant_admin_sets_zone_and_currency_on_settings(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    page = client.get("/settings/").content.decode()
    assert 'name="time_zone"' in page and 'name="currency"' in page
    assert '<option value="Africa/Lagos">Africa/Lagos</option>' in page
    assert 'value="NGN"' in page and "Nigerian naira" in page
    response = client.post(
        "/settings/",
        {
            "name": tenant.name,
            "contact_email": tenant.contact_email,
            "contact_phone": tenant.contact_phone,
            "time_zone": "Africa/Lagos",
            "currency": "NGN",
        },
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.time_zone, tenant.currency) == ("Africa/Lagos", "NGN")
    response = client.post(
        "/settings/",
        {"name": tenant.name, "contact_email": tenant.contact_email, "time_zone": "Mars/Olympus"},
    )
    assert response.status_code == 400
    tenant.refresh_from_db()
    assert tenant.time_zone == "Africa/Lagos"


def test_staff_see_the_zone_and_currency_read_only(client, lagos):
    from tests.factories import TenantStaffFactory

    client.force_login(TenantStaffFactory(tenant=lagos))
    page = client.get("/settings/").content.decode()
    assert 'id="tenant-time-zone">Africa/Lagos<' in page
    assert "NGN · Nigerian naira" in page
    assert 'name="currency"' not in page


def test_system_admin_edits_zone_and_currency_in_the_django_admin(sysadmin_client, tenant):
    url = f"/admin/tenants/tenant/{tenant.pk}/change/"
    response = sysadmin_client.post(
        url,
        {
            "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
            "name": tenant.name,
            "contact_email": tenant.contact_email,
            "contact_phone": tenant.contact_phone,
            "time_zone": "Africa/Kigali",
            "currency": "RWF",
        },
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.time_zone, tenant.currency) == ("Africa/Kigali", "RWF")


def test_middleware_activates_the_tenants_zone_and_system_admins_keep_time_zone(lagos, settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    seen = []

    def view(request):
        seen.append(timezone.get_current_timezone_name())
        return None

    middleware = TenantTimeZoneMiddleware(view)
    for user in (TenantAdminFactory(tenant=lagos), SystemAdminFactory()):
        request = RequestFactory().get("/")
        request.user = user
        middleware(request)
    api = RequestFactory().get("/api/payments/")  # the API: one offset for session and token
    api.user = TenantAdminFactory(tenant=lagos)
    middleware(api)
    assert seen == ["Africa/Lagos", "Africa/Nairobi", "Africa/Nairobi"]
    assert timezone.get_current_timezone_name() == "Africa/Nairobi"  # deactivated after


def test_a_lagos_tenant_sees_its_times_and_naira_on_payments(client, lagos, settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    package = PackageFactory(tenant=lagos, price=Decimal("1500.00"))
    payment = PaymentFactory(package=package)
    Payment.objects.filter(pk=payment.pk).update(created_at=LATE)
    client.force_login(TenantAdminFactory(tenant=lagos))
    page = client.get("/payments/").content.decode()
    assert "NGN 1,500.00" in page
    assert "2026-12-01 23:30" in page and "2026-12-02 01:30" not in page
    assert 'data-time-zone="Africa/Lagos"' in page  # for the toasts' times (notifications.js)


def test_the_dashboard_counts_the_tenants_day_in_its_currency(client, lagos):
    package = PackageFactory(tenant=lagos, price=Decimal("1500.00"))
    PaymentFactory(
        package=package,
        status=Payment.Status.COMPLETED,
        completed_at=timezone.now(),
        provider="daraja",
    )
    client.force_login(TenantAdminFactory(tenant=lagos))
    page = client.get("/").content.decode()
    assert "Revenue today (NGN)" in page
    assert client.get("/dashboard/stats/").json()["revenue_today"] == "1500.00"


def test_the_dashboards_today_is_the_tenants_day_at_utc_plus_14(client, settings):
    """At 23:45 their time, a +14 tenant's today began at 10:00 UTC the day before."""
    settings.TIME_ZONE = "Africa/Nairobi"
    package = PackageFactory(
        tenant=TenantFactory(time_zone="Pacific/Kiritimati"), price=Decimal("10.00")
    )
    for at in (
        datetime(2026, 11, 30, 9, 30, tzinfo=UTC),  # 23:30 on Nov 30 there: yesterday
        datetime(2026, 11, 30, 10, 30, tzinfo=UTC),  # 00:30 on Dec 1 there
        datetime(2026, 12, 1, 9, 30, tzinfo=UTC),  # 23:30 on Dec 1 there
    ):
        PaymentFactory(
            package=package, status=Payment.Status.COMPLETED, completed_at=at, provider="daraja"
        )
    with time_machine.travel(datetime(2026, 12, 1, 9, 45, tzinfo=UTC), tick=False):
        client.force_login(TenantAdminFactory(tenant=package.tenant))
        stats = client.get("/dashboard/stats/").json()
    assert (stats["payments_today"], stats["revenue_today"]) == (2, "20.00")


@pytest.mark.parametrize(
    "overrides, check_id",
    [({"CURRENCY": "XYZ"}, "hotspot.E003"), ({"TIME_ZONE": "Africa/Atlantis"}, "hotspot.E004")],
)
def test_a_bad_currency_or_time_zone_setting_stops_the_start(overrides, check_id):
    assert currency_and_time_zone() == []
    with override_settings(**overrides):
        assert [e.id for e in currency_and_time_zone()] == [check_id]


def test_a_stored_zone_no_longer_known_falls_back_to_time_zone(settings):
    settings.TIME_ZONE = "Africa/Nairobi"
    tenant = Tenant(time_zone="Gone/Away")
    assert str(tenant.tzinfo) == "Africa/Nairobi"


def test_the_dashboard_says_when_its_today_ends_and_counts_the_new_day_after(client, settings):
    """A page left open overnight re-reads its "today" counters at the tenant's midnight: the
    page and the stats say how long until then; a read after it counts the new day alone."""
    settings.TIME_ZONE = "Africa/Nairobi"
    package = PackageFactory(
        tenant=TenantFactory(time_zone="Pacific/Kiritimati"), price=Decimal("10.00")
    )
    PaymentFactory(  # 23:30 on Dec 1 there
        package=package,
        status=Payment.Status.COMPLETED,
        completed_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        provider="daraja",
    )
    client.force_login(TenantAdminFactory(tenant=package.tenant))
    with time_machine.travel(datetime(2026, 12, 1, 9, 45, tzinfo=UTC), tick=False):  # 23:45
        response = client.get("/")
        page = response.content.decode()
        before = client.get("/dashboard/stats/").json()
    assert "no-store" in response["Cache-Control"]  # a Back never shows a stale day
    assert 'data-refresh-in="900.000"' in page  # midnight there is 10:00 UTC
    assert (before["payments_today"], before["refresh_in"]) == (1, 900.0)
    with time_machine.travel(datetime(2026, 12, 1, 10, 0, 1, tzinfo=UTC), tick=False):
        after = client.get("/dashboard/stats/").json()
    assert (after["payments_today"], after["revenue_today"]) == (0, "0.00")
    assert after["refresh_in"] == 86399.0  # the next midnight
