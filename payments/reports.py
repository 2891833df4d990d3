"""Revenue reports: the one home of what counts as a sale and how sales are summed.

A sale is a completed payment (M-Pesa, cash at the counter, or recorded through the API), counted
when it completed, or a redeemed voucher, counted at its package's price when it was redeemed.
Every figure is read through the tenant scope (`for_user`) and can be narrowed to one tenant; day,
week and month boundaries are the tenant's time zone's (Tenant.time_zone; the whole platform's:
TIME_ZONE), not UTC's. Each table is one SQL
query: the payments' and the vouchers' groups, UNION ALL, merged here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, Count, DateField, F, Min, Sum, Value, When
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.translation import gettext_noop

from .models import Payment, Voucher

MPESA, VOUCHER, CASH, OTHER = "mpesa", "voucher", "cash", "other"
# English names, translated where shown (payments/report_views.py)
METHODS: dict[str, str] = {
    MPESA: gettext_noop("M-Pesa"),
    VOUCHER: gettext_noop("Voucher"),
    CASH: gettext_noop("Cash"),
    OTHER: gettext_noop("Other (API)"),
}
PERIODS = ("day", "week", "month")
ZERO = Decimal("0.00")


def report_timezone(*, user: Any = None, tenant: Any = None) -> tzinfo:
    """The zone whose calendar a report uses: one tenant's report is in its zone (`tenant`, else
    the user's own tenant); the whole platform's, in TIME_ZONE. A payment at 23:30 UTC is
    the next day's in Nairobi (UTC+3)."""
    tenant = tenant if tenant is not None else getattr(user, "tenant", None)
    return tenant.tzinfo if tenant is not None else timezone.get_default_timezone()


def report_currency(*, user: Any = None, tenant: Any = None) -> str:
    """The currency a report with no sales shows its zeros in (the tenant's, else CURRENCY)."""
    tenant = tenant if tenant is not None else getattr(user, "tenant", None)
    return tenant.currency if tenant is not None else settings.CURRENCY


@dataclass(frozen=True)
class ReportRange:
    """Local calendar dates `start`..`end`, both included, in `tz`."""

    start: date
    end: date
    tz: tzinfo

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=self.tz)

    @property
    def end_at(self) -> datetime:
        """The first instant after the range: local midnight after `end` (exclusive)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.tz)

    @classmethod
    def today(cls, now: datetime | None = None, *, tz: tzinfo | None = None) -> ReportRange:
        tz = tz or report_timezone()
        day = timezone.localtime(now or timezone.now(), tz).date()
        return cls(start=day, end=day, tz=tz)


@dataclass(frozen=True)
class Row:
    key: tuple[Any, ...]
    currency: str
    sales: int
    revenue: Decimal


# --- the two sources of sales ------------------------------------------------------------------

_PAYMENT_METHOD = Case(
    When(provider=Payment.Provider.DARAJA, then=Value(MPESA)),
    When(provider=Payment.Provider.CASH, then=Value(CASH)),
    default=Value(OTHER),
    output_field=CharField(),
)


def _payments(*, user: Any, tenant: Any, rng: ReportRange):
    qs = Payment.objects.for_user(user).filter(
        status=Payment.Status.COMPLETED,
        completed_at__gte=rng.start_at,
        completed_at__lt=rng.end_at,
    )
    return qs.filter(tenant=tenant) if tenant is not None else qs


def _vouchers(*, user: Any, tenant: Any, rng: ReportRange):
    qs = Voucher.objects.for_user(user).filter(
        status=Voucher.Status.USED, used_at__gte=rng.start_at, used_at__lt=rng.end_at
    )
    return qs.filter(tenant=tenant) if tenant is not None else qs


# name → (payment expression, voucher expression); `at` is the moment the sale counts.
KeyBuilder = Callable[[tzinfo], dict[str, tuple[Any, Any]]]


def _bucket(kind: str) -> KeyBuilder:
    def build(tz: tzinfo) -> dict[str, tuple[Any, Any]]:
        return {
            "k_period": (
                Trunc("completed_at", kind, output_field=DateField(), tzinfo=tz),
                Trunc("used_at", kind, output_field=DateField(), tzinfo=tz),
            )
        }

    return build


def _by_method(tz: tzinfo) -> dict[str, tuple[Any, Any]]:
    return {"k_method": (_PAYMENT_METHOD, Value(VOUCHER, output_field=CharField()))}


def _by_package(tz: tzinfo) -> dict[str, tuple[Any, Any]]:
    return {
        "k_package": (F("package_id"), F("package_id")),
        "k_package_name": (F("package__name"), F("package__name")),
        "k_tenant_name": (F("tenant__name"), F("tenant__name")),
    }


def _by_tenant(tz: tzinfo) -> dict[str, tuple[Any, Any]]:
    return {"k_tenant": (F("tenant_id"), F("tenant_id")), "k_name": (F("tenant__name"),) * 2}


def _no_key(tz: tzinfo) -> dict[str, tuple[Any, Any]]:
    return {}


def _grouped(*, user: Any, tenant: Any, rng: ReportRange, keys: KeyBuilder) -> list[Row]:
    """Sales and revenue per key and currency: one query (payments UNION ALL vouchers)."""
    built = keys(rng.tz)
    names = list(built)
    payments = (
        _payments(user=user, tenant=tenant, rng=rng)
        .order_by()
        .annotate(**{n: e[0] for n, e in built.items()}, k_currency=F("currency"))
        .values(*names, "k_currency")
        .annotate(n_sales=Count("pk"), n_revenue=Sum("amount"))
    )
    vouchers = (
        _vouchers(user=user, tenant=tenant, rng=rng)
        .order_by()
        .annotate(**{n: e[1] for n, e in built.items()}, k_currency=F("package__currency"))
        .values(*names, "k_currency")
        .annotate(n_sales=Count("pk"), n_revenue=Sum("package__price"))
    )
    merged: dict[tuple[Any, ...], list[Any]] = {}
    for row in payments.union(vouchers, all=True):
        key = tuple(row[n] for n in names)
        slot = merged.setdefault((*key, row["k_currency"]), [0, ZERO])
        slot[0] += row["n_sales"]
        slot[1] += Decimal(row["n_revenue"] or 0)
    return [
        Row(key=k[:-1], currency=k[-1], sales=v[0], revenue=v[1].quantize(ZERO))
        for k, v in merged.items()
    ]


# --- public selectors ------------------------------------------------------------------------


def sales_totals(*, user: Any, rng: ReportRange, tenant: Any = None) -> dict[str, dict[str, Any]]:
    """{currency: {"sales": n, "revenue": Decimal}}: the one revenue figure (dashboard too)."""
    rows = _grouped(user=user, tenant=tenant, rng=rng, keys=_no_key)
    return {
        r.currency: {"sales": r.sales, "revenue": r.revenue}
        for r in sorted(rows, key=lambda r: r.currency)
    }


def revenue_in(totals: dict[str, dict[str, Any]], currency: str | None = None) -> Decimal:
    return totals.get(currency or settings.CURRENCY, {}).get("revenue", ZERO)


def _period_starts(rng: ReportRange, kind: str) -> list[date]:
    """Every bucket's first day from the one holding `start` to the one holding `end`."""
    if kind == "day":
        first = rng.start
    elif kind == "week":
        first = rng.start - timedelta(days=rng.start.weekday())  # ISO weeks start on Monday
    else:
        first = rng.start.replace(day=1)
    out, day = [], first
    while day <= rng.end:
        out.append(day)
        if kind == "month":
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            day += timedelta(days=1 if kind == "day" else 7)
    return out


def sales_by_period(*, user: Any, rng: ReportRange, kind: str, tenant: Any = None) -> list[Row]:
    """One row per day/week/month of the range and currency, empty buckets included (zeros)."""
    if kind not in PERIODS:
        raise ValueError(f"kind must be one of {PERIODS}")
    rows = _grouped(user=user, tenant=tenant, rng=rng, keys=_bucket(kind))
    found = {(r.key[0], r.currency): r for r in rows}
    currencies = sorted({r.currency for r in rows}) or [report_currency(user=user, tenant=tenant)]
    return [
        found.get((start, cur)) or Row(key=(start,), currency=cur, sales=0, revenue=ZERO)
        for cur in currencies
        for start in _period_starts(rng, kind)
    ]


def sales_by_method(*, user: Any, rng: ReportRange, tenant: Any = None) -> list[Row]:
    """One row per payment method (M-Pesa, voucher, cash, other) and currency, zeros included."""
    rows = _grouped(user=user, tenant=tenant, rng=rng, keys=_by_method)
    found = {(r.key[0], r.currency): r for r in rows}
    currencies = sorted({r.currency for r in rows}) or [report_currency(user=user, tenant=tenant)]
    out = []
    for cur in currencies:
        for method in METHODS:
            row = found.get((method, cur))
            if row is not None or method != OTHER:  # "Other (API)" only when there is some
                out.append(row or Row(key=(method,), currency=cur, sales=0, revenue=ZERO))
    return out


def sales_by_package(*, user: Any, rng: ReportRange, tenant: Any = None) -> list[Row]:
    """Packages that sold in the range, best first; key = (package id, name, tenant name)."""
    rows = _grouped(user=user, tenant=tenant, rng=rng, keys=_by_package)
    return sorted(rows, key=lambda r: (r.currency, -r.revenue, r.key[1], r.key[0]))


def sales_by_tenant(*, user: Any, rng: ReportRange) -> list[Row]:
    """Tenants that sold in the range, best first; key = (tenant id, name)."""
    rows = _grouped(user=user, tenant=None, rng=rng, keys=_by_tenant)
    return sorted(rows, key=lambda r: (r.currency, -r.revenue, r.key[1]))


def new_customers(*, user: Any, rng: ReportRange, tenant: Any = None) -> int:
    """Phone numbers whose first completed payment with a tenant falls in the range (one query).

    Voucher customers are anonymous (a code, no phone), so they are not counted here.
    """
    qs = Payment.objects.for_user(user).filter(status=Payment.Status.COMPLETED).exclude(phone="")
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    return (
        qs.order_by()
        .values("tenant_id", "phone")
        .annotate(first=Min("completed_at"))
        .filter(first__gte=rng.start_at, first__lt=rng.end_at)
        .count()
    )


def report_build(*, user: Any, rng: ReportRange, tenant: Any = None) -> dict[str, Any]:
    """Every table of the report page (a constant number of queries, whatever the data)."""
    report: dict[str, Any] = {
        "totals": sales_totals(user=user, rng=rng, tenant=tenant),
        "new_customers": new_customers(user=user, rng=rng, tenant=tenant),
        "day": sales_by_period(user=user, rng=rng, kind="day", tenant=tenant),
        "week": sales_by_period(user=user, rng=rng, kind="week", tenant=tenant),
        "month": sales_by_period(user=user, rng=rng, kind="month", tenant=tenant),
        "method": sales_by_method(user=user, rng=rng, tenant=tenant),
        "package": sales_by_package(user=user, rng=rng, tenant=tenant),
    }
    if tenant is None and getattr(user, "is_system_admin", False):
        report["tenant"] = sales_by_tenant(user=user, rng=rng)
    return report


def tally(rows: list[Row]) -> dict[str, tuple[int, Decimal]]:
    """Totals of a table per currency (its last CSV lines)."""
    out: dict[str, list[Any]] = defaultdict(lambda: [0, ZERO])
    for r in rows:
        out[r.currency][0] += r.sales
        out[r.currency][1] += r.revenue
    return {cur: (v[0], v[1]) for cur, v in sorted(out.items())}
