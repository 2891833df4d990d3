"""Reports count days in the tenant's time zone and show money in its currency (CSV too)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from payments.models import Payment
from tests.factories import PackageFactory, PaymentFactory, TenantAdminFactory, TenantFactory

pytestmark = pytest.mark.django_db

AT_2330_UTC = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 02:30 on Dec 1 in Nairobi (UTC+3)
AT_2230_UTC = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)  # 23:30 on Nov 30 in Lagos (UTC+1)
# UTC+14: its day starts ten hours before UTC's, so its "today" is often UTC's tomorrow.
KIRITIMATI = "Pacific/Kiritimati"


@pytest.fixture(autouse=True)
def _platform_in_utc(settings):
    settings.TIME_ZONE = "UTC"  # the tenants' own zones must decide, not the platform's


def paid(package, at):
    return PaymentFactory(
        package=package, status=Payment.Status.COMPLETED, completed_at=at, provider="daraja"
    )


def csv_rows(client, **params) -> list[list[str]]:
    response = client.get("/reports/", {"format": "csv", **params})
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content[3:].decode("utf-8"))))


def test_a_payment_at_2330_utc_counts_for_the_next_day_in_nairobi(client):
    tenant = TenantFactory(time_zone="Africa/Nairobi", currency="KES")
    paid(PackageFactory(tenant=tenant, price=Decimal("50.00")), AT_2330_UTC)
    client.force_login(TenantAdminFactory(tenant=tenant))
    rows = csv_rows(client, start="2026-11-30", end="2026-12-01", table="day")
    assert rows[1:] == [
        ["2026-11-30", "0", "0.00", "KES"],
        ["2026-12-01", "1", "50.00", "KES"],
        ["Total", "1", "50.00", "KES"],
    ]
    data = client.get("/reports/", {"start": "2026-11-30", "end": "2026-12-01", "format": "json"})
    assert data.json()["timezone"] == "Africa/Nairobi"


def test_a_lagos_tenants_day_ends_at_its_midnight_and_its_csv_is_in_naira(client):
    tenant = TenantFactory(time_zone="Africa/Lagos", currency="NGN")
    package = PackageFactory(tenant=tenant, price=Decimal("1500.00"))
    paid(package, AT_2230_UTC)  # Nov 30, 23:30 in Lagos
    paid(package, AT_2330_UTC)  # Dec 1, 00:30 in Lagos
    client.force_login(TenantAdminFactory(tenant=tenant))
    rows = csv_rows(client, start="2026-11-30", end="2026-12-01", table="day")
    assert rows[1:] == [
        ["2026-11-30", "1", "1500.00", "NGN"],
        ["2026-12-01", "1", "1500.00", "NGN"],
        ["Total", "2", "3000.00", "NGN"],
    ]
    page = client.get("/reports/", {"start": "2026-11-30", "end": "2026-12-01"}).content.decode()
    assert "NGN 3,000.00" in page and "days in Africa/Lagos" in page


def test_an_empty_report_is_in_the_tenants_currency(client):
    tenant = TenantFactory(currency="UGX")
    client.force_login(TenantAdminFactory(tenant=tenant))
    rows = csv_rows(client, start="2026-12-01", end="2026-12-01", table="method")
    assert {row[-1] for row in rows[1:]} == {"UGX"}


def test_a_system_admin_sees_one_tenant_in_its_zone_and_the_platform_in_time_zone(
    client, system_admin
):
    tenant = TenantFactory(time_zone="Africa/Nairobi")
    paid(PackageFactory(tenant=tenant, price=Decimal("50.00")), AT_2330_UTC)
    client.force_login(system_admin)
    one = client.get(
        "/system/reports/",
        {"start": "2026-12-01", "end": "2026-12-01", "tenant": tenant.pk, "format": "json"},
    ).json()
    assert one["timezone"] == "Africa/Nairobi" and one["totals"][0]["sales"] == 1
    platform = client.get(
        "/system/reports/", {"start": "2026-11-30", "end": "2026-11-30", "format": "json"}
    ).json()
    assert platform["timezone"] == "UTC" and platform["totals"][0]["sales"] == 1


def test_the_default_range_ends_on_the_tenants_today_just_after_its_midnight(client):
    tenant = TenantFactory(time_zone=KIRITIMATI)
    with time_machine.travel(datetime(2026, 12, 1, 10, 15, tzinfo=UTC), tick=False):  # 00:15, Dec 2
        client.force_login(TenantAdminFactory(tenant=tenant))
        data = client.get("/reports/", {"format": "json"}).json()
    assert (data["start"], data["end"]) == ("2026-11-03", "2026-12-02")


def test_the_last_day_of_the_default_range_holds_a_sale_of_2330_their_time(client):
    package = PackageFactory(tenant=TenantFactory(time_zone=KIRITIMATI), price=Decimal("10.00"))
    paid(package, datetime(2026, 11, 30, 9, 30, tzinfo=UTC))  # 23:30 on Nov 30 there
    paid(package, datetime(2026, 11, 30, 10, 30, tzinfo=UTC))  # 00:30 on Dec 1 there
    paid(package, datetime(2026, 12, 1, 9, 30, tzinfo=UTC))  # 23:30 on Dec 1 there
    with time_machine.travel(datetime(2026, 12, 1, 9, 45, tzinfo=UTC), tick=False):  # 23:45 there
        client.force_login(TenantAdminFactory(tenant=package.tenant))
        rows = csv_rows(client, table="day")
    assert rows[-3:] == [
        ["2026-11-30", "1", "10.00", "KES"],
        ["2026-12-01", "2", "20.00", "KES"],
        ["Total", "3", "30.00", "KES"],
    ]
