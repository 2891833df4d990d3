"""Revenue report selectors: what counts as a sale, buckets, the time zone, scope, queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments import reports, services, vouchers
from payments.models import Payment, Voucher
from tenants.selectors import dashboard_stats
from tests.factories import PackageFactory, PaymentFactory

pytestmark = pytest.mark.django_db
NAIROBI = ZoneInfo("Africa/Nairobi")


@pytest.fixture(autouse=True)
def _nairobi(settings):
    settings.TIME_ZONE = "Africa/Nairobi"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def paid(package, at, *, provider=Payment.Provider.DARAJA, amount=None, phone="254712345678"):
    return PaymentFactory(
        package=package,
        status=Payment.Status.COMPLETED,
        completed_at=at,
        provider=provider,
        amount=amount or package.price,
        phone=phone,
    )


def redeemed(tenant, package, at):
    """A voucher redeemed through the portal's service, then placed at `at`."""
    batch = vouchers.voucher_batch_create(tenant=tenant, package=package, count=1, by=None)
    voucher = batch.vouchers.get()
    vouchers.voucher_redeem(tenant=tenant, code=voucher.code)
    Voucher.objects.filter(pk=voucher.pk).update(used_at=at)
    return voucher


def rng(start: date, end: date) -> reports.ReportRange:
    return reports.ReportRange(start=start, end=end, tz=NAIROBI)


def by_key(rows):
    return {r.key[0]: (r.sales, r.revenue) for r in rows}


def test_day_boundaries_are_local_not_utc(tenant, tenant_admin):
    package = PackageFactory(tenant=tenant, price=Decimal("50.00"))
    paid(package, utc(2026, 11, 30, 20, 59))  # 23:59 in Nairobi: 30 November
    paid(package, utc(2026, 11, 30, 21, 0))  # 00:00 in Nairobi: 1 December
    paid(package, utc(2026, 12, 1, 20, 59, 59))  # 23:59:59 on 1 December
    paid(package, utc(2026, 12, 1, 21, 0))  # 2 December: outside the range
    days = by_key(
        reports.sales_by_period(
            user=tenant_admin, rng=rng(date(2026, 11, 30), date(2026, 12, 1)), kind="day"
        )
    )
    assert days == {
        date(2026, 11, 30): (1, Decimal("50.00")),
        date(2026, 12, 1): (2, Decimal("100.00")),
    }


def test_week_and_month_buckets_with_empty_ones_as_zeros(tenant, tenant_admin):
    package = PackageFactory(tenant=tenant, price=Decimal("20.00"))
    paid(package, utc(2026, 10, 31, 22, 0))  # Sunday 1 Nov 01:00 local: week of 26 Oct
    paid(package, utc(2026, 11, 2, 6, 0))  # Monday 2 Nov: week of 2 Nov
    paid(package, utc(2026, 12, 14, 6, 0))
    window = rng(date(2026, 11, 1), date(2026, 12, 31))
    weeks = by_key(reports.sales_by_period(user=tenant_admin, rng=window, kind="week"))
    assert weeks[date(2026, 10, 26)] == (1, Decimal("20.00"))
    assert weeks[date(2026, 11, 2)] == (1, Decimal("20.00"))
    assert weeks[date(2026, 11, 9)] == (0, Decimal("0.00"))
    assert weeks[date(2026, 12, 14)] == (1, Decimal("20.00"))
    assert min(weeks) == date(2026, 10, 26) and max(weeks) == date(2026, 12, 28)
    months = by_key(reports.sales_by_period(user=tenant_admin, rng=window, kind="month"))
    assert months == {
        date(2026, 11, 1): (2, Decimal("40.00")),
        date(2026, 12, 1): (1, Decimal("20.00")),
    }


def test_methods_count_mpesa_cash_and_vouchers(tenant, tenant_admin):
    package = PackageFactory(tenant=tenant, price=Decimal("30.00"))
    now = timezone.now()
    paid(package, now)
    services.payment_record_cash(tenant=tenant, package=package, by=tenant_admin)
    redeemed(tenant, package, now)
    PaymentFactory(package=package, status=Payment.Status.FAILED)
    PaymentFactory(package=package)  # pending: not a sale
    methods = by_key(reports.sales_by_method(user=tenant_admin, rng=reports.ReportRange.today()))
    assert methods == {
        "mpesa": (1, Decimal("30.00")),
        "voucher": (1, Decimal("30.00")),
        "cash": (1, Decimal("30.00")),
    }
    totals = reports.sales_totals(user=tenant_admin, rng=reports.ReportRange.today())
    assert totals == {"KES": {"sales": 3, "revenue": Decimal("90.00")}}


def test_dashboard_revenue_today_agrees_with_the_report(tenant, tenant_admin):
    cheap = PackageFactory(tenant=tenant, price=Decimal("10.00"))
    dear = PackageFactory(tenant=tenant, price=Decimal("99.50"))
    paid(cheap, timezone.now())
    services.payment_record_cash(tenant=tenant, package=dear, by=tenant_admin)
    redeemed(tenant, dear, timezone.now())
    paid(cheap, timezone.now() - timedelta(days=3))  # not today
    today = reports.ReportRange.today(tz=reports.report_timezone(user=tenant_admin))  # as /reports/
    report = reports.report_build(user=tenant_admin, rng=today)
    assert report["totals"]["KES"]["revenue"] == Decimal("209.00")
    assert dashboard_stats(user=tenant_admin)["revenue_today"] == "209.00"


def test_packages_and_new_customers(tenant, tenant_admin):
    day = rng(date(2026, 11, 10), date(2026, 11, 10))
    a = PackageFactory(tenant=tenant, name="Hour", price=Decimal("20.00"))
    b = PackageFactory(tenant=tenant, name="Day", price=Decimal("80.00"))
    paid(a, utc(2026, 11, 1, 9), phone="254700000001")  # an earlier customer …
    paid(a, utc(2026, 11, 10, 9), phone="254700000001")  # … who comes back: not new
    paid(b, utc(2026, 11, 10, 9), phone="254700000002")  # new
    paid(a, utc(2026, 11, 10, 10), phone="254700000002")
    rows = reports.sales_by_package(user=tenant_admin, rng=day)
    assert [(r.key[1], r.sales, r.revenue) for r in rows] == [
        ("Day", 1, Decimal("80.00")),
        ("Hour", 2, Decimal("40.00")),
    ]
    assert reports.new_customers(user=tenant_admin, rng=day) == 1


def test_a_tenant_never_sees_another_tenants_sales(tenant, tenant_admin, other_tenant, other_admin):
    mine = PackageFactory(tenant=tenant, price=Decimal("10.00"))
    theirs = PackageFactory(tenant=other_tenant, price=Decimal("1000.00"))
    paid(mine, timezone.now())
    paid(theirs, timezone.now(), phone="254799999999")
    redeemed(other_tenant, theirs, timezone.now())
    today = reports.ReportRange.today()
    report = reports.report_build(user=tenant_admin, rng=today)
    assert report["totals"] == {"KES": {"sales": 1, "revenue": Decimal("10.00")}}
    assert [r.key[1] for r in report["package"]] == [mine.name]
    assert report["new_customers"] == 1
    assert "tenant" not in report
    # A tenant admin naming another tenant still reads through their own scope.
    assert reports.sales_totals(user=tenant_admin, rng=today, tenant=other_tenant) == {}


def test_system_admin_sees_the_platform_and_each_tenant(
    system_admin, tenant, other_tenant, tenant_admin
):
    paid(PackageFactory(tenant=tenant, price=Decimal("10.00")), timezone.now())
    paid(PackageFactory(tenant=other_tenant, price=Decimal("5.00")), timezone.now())
    today = reports.ReportRange.today()
    platform = reports.report_build(user=system_admin, rng=today)
    assert platform["totals"]["KES"]["revenue"] == Decimal("15.00")
    assert {r.key[1]: r.revenue for r in platform["tenant"]} == {
        tenant.name: Decimal("10.00"),
        other_tenant.name: Decimal("5.00"),
    }
    one = reports.report_build(user=system_admin, rng=today, tenant=other_tenant)
    assert one["totals"]["KES"]["revenue"] == Decimal("5.00")


def test_one_query_per_table_whatever_the_data(tenant, tenant_admin):
    today = reports.ReportRange.today()

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            reports.report_build(user=tenant_admin, rng=today)
        return len(ctx.captured_queries)

    empty = count()
    for _ in range(3):
        package = PackageFactory(tenant=tenant)
        paid(package, timezone.now())
        redeemed(tenant, package, timezone.now())
    assert count() == empty == 7  # totals, new customers, day, week, month, method, package
