"""/reports/ and /system/reports/: who may see them, bad input, JSON, and the CSV's bytes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from payments import services
from payments.models import Payment
from tenants.models import Tenant
from tenants.services import tenant_suspend
from tests.factories import PackageFactory, PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _nairobi(settings):
    settings.TIME_ZONE = "Africa/Nairobi"


def paid(package, at, **kw):
    return PaymentFactory(
        package=package, status=Payment.Status.COMPLETED, completed_at=at, provider="daraja", **kw
    )


def rows_of(response) -> list[list[str]]:
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 BOM"
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"))))


@pytest.mark.parametrize(
    "who, status", [("staff", 403), ("other_admin", 200), ("tenant_admin", 200)]
)
def test_reports_are_for_tenant_admins(client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/reports/").status_code == status


def test_anonymous_is_sent_to_sign_in_and_staff_cannot_download(client, staff):
    response = client.get("/reports/?format=csv")
    assert response.status_code == 302 and "/login" in response["Location"]
    client.force_login(staff)
    assert client.get("/reports/?format=csv").status_code == 403
    assert client.get("/reports/?format=json").status_code == 403


def test_system_reports_are_for_system_admins(client, tenant_admin, system_admin):
    client.force_login(tenant_admin)
    assert client.get("/system/reports/").status_code == 403
    client.force_login(system_admin)
    assert client.get("/system/reports/").status_code == 200
    response = client.get("/reports/?start=2026-11-01")
    assert response.status_code == 302
    assert response["Location"] == "/system/reports/?start=2026-11-01"


@pytest.mark.parametrize(
    "query, message",
    [
        ({"start": "2026-12-05", "end": "2026-12-01"}, "start date must be on or before"),
        ({"start": "2025-01-01", "end": "2026-12-01"}, "at most 366 days"),
        ({"start": "yesterday"}, "Enter a valid date"),
        # the zone's offset (and the day after the end) left datetime's range: a 500 before
        ({"start": "0001-01-01", "end": "0001-01-05"}, "between 2000-01-01 and 2099-12-31"),
        ({"start": "9999-12-31"}, "between 2000-01-01 and 2099-12-31"),
        ({"end": "0001-01-01"}, "between 2000-01-01 and 2099-12-31"),
        ({"format": "xml"}, "Unknown format"),
    ],
)
def test_a_bad_range_is_a_clear_error(client, tenant_admin, query, message):
    client.force_login(tenant_admin)
    page = client.get("/reports/", query)
    assert page.status_code == 400
    assert message in page.content.decode()
    if query.get("format") != "xml":
        as_json = client.get("/reports/", {**query, "format": "json"})
        assert as_json.status_code == 400 and message in as_json.json()["error"]
        as_csv = client.get("/reports/", {**query, "format": "csv"})
        assert as_csv.status_code == 400 and message in as_csv.content.decode()


def test_unknown_table_and_platform_table_for_a_tenant_are_refused(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get("/reports/", {"format": "csv", "table": "tenant"})
    assert response.status_code == 400
    assert "Unknown table" in response.content.decode()


def test_page_carries_the_data_for_the_charts_and_escapes_names(client, tenant, tenant_admin):
    package = PackageFactory(tenant=tenant, name="<b>Hour</b>", price=Decimal("25.00"))
    paid(package, timezone.now())
    client.force_login(tenant_admin)
    html = client.get("/reports/").content.decode()
    assert 'id="report-data"' in html and "chart.umd.min.js" in html
    assert "<b>Hour</b>" not in html and "&lt;b&gt;Hour&lt;/b&gt;" in html
    # The chart data is JSON in a <script type="application/json">, its < escaped.
    assert "\\u003Cb\\u003EHour\\u003C/b\\u003E" in html


def test_csv_bytes_have_iso_dates_two_decimals_currency_and_totals(client, tenant, tenant_admin):
    Tenant.objects.filter(pk=tenant.pk).update(time_zone="Africa/Nairobi")  # its days, below
    package = PackageFactory(tenant=tenant, name="Siku · Día", price=Decimal("50"))
    # 23:30 in Nairobi on 30 Nov is 20:30 UTC; 00:30 on 1 Dec is 21:30 UTC on 30 Nov.
    paid(package, datetime(2026, 11, 30, 20, 30, tzinfo=UTC))
    paid(package, datetime(2026, 11, 30, 21, 30, tzinfo=UTC), amount=Decimal("12.5"))
    client.force_login(tenant_admin)
    query = {"start": "2026-11-30", "end": "2026-12-01", "format": "csv"}
    response = client.get("/reports/", {**query, "table": "day"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="report-day-2026-11-30-2026-12-01.csv"' in response["Content-Disposition"]
    assert rows_of(response) == [
        ["Date", "Sales", "Revenue", "Currency"],
        ["2026-11-30", "1", "50.00", "KES"],
        ["2026-12-01", "1", "12.50", "KES"],
        ["Total", "2", "62.50", "KES"],
    ]
    packages = rows_of(client.get("/reports/", {**query, "table": "package"}))
    assert packages[1] == ["Siku · Día", tenant.name, "2", "62.50", "KES"]
    assert packages[-1] == ["Total", "", "2", "62.50", "KES"]
    months = rows_of(client.get("/reports/", {**query, "table": "month"}))
    assert months[1:] == [
        ["2026-11", "1", "50.00", "KES"],
        ["2026-12", "1", "12.50", "KES"],
        ["Total", "2", "62.50", "KES"],
    ]


def test_json_counts_every_method_and_agrees_with_the_dashboard(client, tenant, tenant_admin):
    package = PackageFactory(tenant=tenant, price=Decimal("40.00"))
    paid(package, timezone.now())
    services.payment_record_cash(tenant=tenant, package=package, by=tenant_admin)
    client.force_login(tenant_admin)
    today = timezone.localdate(timezone=tenant.tzinfo).isoformat()  # the report's day
    data = client.get("/reports/", {"start": today, "end": today, "format": "json"}).json()
    assert data["totals"] == [
        {"currency": "KES", "sales": 2, "revenue": "80.00", "display": "KES 80.00"}
    ]
    methods = {row[0]: row[2] for row in data["tables"]["method"]["rows"]}
    assert methods == {"M-Pesa": "40.00", "Voucher": "0.00", "Cash": "40.00"}
    stats = client.get("/dashboard/stats/").json()
    assert stats["revenue_today"] == "80.00"


def test_a_tenant_admin_cannot_reach_another_tenants_figures(
    client, tenant, tenant_admin, other_tenant
):
    paid(PackageFactory(tenant=other_tenant, price=Decimal("999.00")), timezone.now())
    client.force_login(tenant_admin)
    data = client.get(
        "/reports/", {"format": "json", "tenant": other_tenant.pk}
    ).json()  # the tenant parameter is not theirs to choose: ignored
    assert data["totals"] == []
    assert "999" not in client.get("/reports/", {"tenant": other_tenant.pk}).content.decode()


def test_system_report_platform_and_per_tenant_csv(client, system_admin, tenant, other_tenant):
    paid(PackageFactory(tenant=tenant, price=Decimal("10.00")), timezone.now())
    paid(PackageFactory(tenant=other_tenant, price=Decimal("5.00")), timezone.now())
    client.force_login(system_admin)
    platform = rows_of(client.get("/system/reports/", {"format": "csv", "table": "tenant"}))
    assert sorted(platform[1:-1]) == sorted(
        [[tenant.name, "1", "10.00", "KES"], [other_tenant.name, "1", "5.00", "KES"]]
    )
    assert platform[-1] == ["Total", "2", "15.00", "KES"]
    one = client.get("/system/reports/", {"format": "csv", "table": "day", "tenant": tenant.pk})
    assert f"report-{tenant.slug}-day-" in one["Content-Disposition"]
    assert rows_of(one)[-1] == ["Total", "1", "10.00", "KES"]
    bad = client.get("/system/reports/", {"tenant": "999999"})
    assert bad.status_code == 400


def test_default_range_is_the_last_30_local_days(client, tenant_admin):
    client.force_login(tenant_admin)
    data = client.get("/reports/", {"format": "json"}).json()
    end = date.fromisoformat(data["end"])
    assert end == timezone.localdate(timezone=tenant_admin.tenant.tzinfo)
    assert (end - date.fromisoformat(data["start"])).days == 29
    assert data["timezone"] == tenant_admin.tenant.time_zone


def test_rights_end_when_the_tenant_is_suspended(client, tenant, tenant_admin, system_admin):
    client.force_login(tenant_admin)
    assert client.get("/reports/?format=csv").status_code == 200
    tenant_suspend(tenant=tenant, reason="Unpaid invoice", by=system_admin)
    response = client.get("/reports/?format=csv")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_a_swahili_admin_gets_the_report_tables_in_swahili(client, tenant, tenant_admin):
    tenant_admin.language = "sw"
    tenant_admin.save(update_fields=["language"])
    package = PackageFactory(tenant=tenant, price=Decimal("50"))
    paid(package, datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    client.force_login(tenant_admin)
    query = {"start": "2026-11-30", "end": "2026-11-30", "format": "csv"}
    days = rows_of(client.get("/reports/", {**query, "table": "day"}))
    assert days[0] == ["Tarehe", "Mauzo", "Mapato", "Sarafu"]
    assert days[-1][0] == "Jumla"
    methods = rows_of(client.get("/reports/", {**query, "table": "method"}))
    assert methods[0][0] == "Njia ya malipo"
    assert methods[1][0] == "M-Pesa"
    html = client.get("/reports/", {"start": "2026-11-30", "end": "2026-11-30"}).content.decode()
    assert "Mapato kwa siku" in html and "Revenue by day" not in html
