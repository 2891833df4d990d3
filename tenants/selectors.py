"""Tenant reads for views, API and admin: always scoped through `for_user`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from config.errors import NotFound
from config.money import format_money
from hotspot.models import HotspotUser
from hotspot.selectors import online_by_router
from payments import reports
from payments.models import Payment

from .models import Tenant


def tenant_list(*, user: Any, search: str = "", status: str | None = None) -> QuerySet[Tenant]:
    """Tenants `user` may see (all for system admins, their own otherwise), filtered."""
    tenants = Tenant.objects.for_user(user)
    search = (search or "").strip()
    if search:
        tenants = tenants.filter(
            Q(name__icontains=search)
            | Q(slug__icontains=search)
            | Q(contact_email__icontains=search)
        )
    if status:
        tenants = tenants.filter(status=status)
    return tenants.order_by("name")


def tenant_get(*, user: Any, tenant_id: Any) -> Tenant:
    """One tenant `user` may see; NotFound otherwise (another tenant's rows do not exist)."""
    tenant = Tenant.objects.for_user(user).filter(pk=_pk(tenant_id)).first()
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


def _pk(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def status_counts(*, user: Any) -> dict[str, int]:
    """How many tenants `user` may see in each status (every status present, zero included)."""
    counts = dict.fromkeys(Tenant.Status.values, 0)
    for row in Tenant.objects.for_user(user).values("status").order_by():
        counts[row["status"]] += 1
    return counts


# ---------------------------------------------------------------- the tenant dashboard
# Cross-app reads for one page, through each app's tenant scope (`for_user`).


def dashboard_today(*, user: User, now: datetime | None = None) -> reports.ReportRange:
    """The day of the dashboard's "today" counters: the tenant's (its time zone), as on
    /reports/."""
    return reports.ReportRange.today(now, tz=reports.report_timezone(user=user))


def dashboard_day_left(*, user: User, now: datetime | None = None) -> float:
    """Seconds until the tenant's midnight, when the "today" counters start again from zero
    with no event to say so: the page re-reads them then (else an open page keeps yesterday's)."""
    now = now or timezone.now()
    return (dashboard_today(user=user, now=now).end_at - now).total_seconds()


def dashboard_stats(*, user: User, now: datetime | None = None) -> dict[str, Any]:
    """The dashboard's counters, read through the tenant scope."""
    now = now or timezone.now()
    rng = dashboard_today(user=user, now=now)
    payments = Payment.objects.for_user(user)
    today = payments.filter(status=Payment.Status.COMPLETED, completed_at__gte=rng.start_at)
    # Revenue has one home (payments.reports): M-Pesa, cash and vouchers, as /reports/ sums it.
    totals = reports.sales_totals(user=user, rng=rng)
    revenue = reports.revenue_in(totals, reports.report_currency(user=user))
    return {
        "users": User.objects.for_user(user).exclude(role=User.Role.SYSTEM_ADMIN).count(),
        "active_hotspot_users": HotspotUser.objects.for_user(user)
        .filter(status=HotspotUser.Status.ACTIVE, expires_at__gt=now)
        .count(),
        "payments_today": today.count(),
        "revenue_today": f"{revenue:.2f}",
        "pending_payments": payments.filter(status=Payment.Status.PENDING).count(),
    }


def recent_activity(*, user: User, limit: int = 10) -> list[dict[str, Any]]:
    """Latest things that happened in the tenant, newest first (payments, hotspot users, users)."""
    items: list[dict[str, Any]] = []
    for p in Payment.objects.for_user(user).select_related("package")[:limit]:
        items.append(
            {
                "at": p.updated_at,
                "title": {
                    "completed": _("Payment completed"),
                    "failed": _("Payment failed"),
                }.get(p.status, _("Payment pending")),
                "text": _("%(amount)s from %(phone)s for %(package)s")
                % {
                    "amount": format_money(p.amount, p.currency),
                    "phone": p.masked_phone,
                    "package": p.package.name,
                },
                "level": {"completed": "success", "failed": "error"}.get(p.status, "info"),
            }
        )
    for h in HotspotUser.objects.for_user(user).select_related("package")[:limit]:
        items.append(
            {
                "at": h.created_at,
                "title": _("Hotspot user created"),
                "text": f"{h.username} on {h.package.name}",
                "level": "info",
            }
        )
    for u in (
        User.objects.for_user(user)
        .exclude(role=User.Role.SYSTEM_ADMIN)
        .order_by("-date_joined")[:limit]
    ):
        items.append(
            {"at": u.date_joined, "title": _("User added"), "text": u.display_name, "level": "info"}
        )
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]


def online_counts(tenant_ids: list[int]) -> dict[int, int] | None:
    """People online per tenant now, or None when unknown (no presence, or its store is down).

    Presence belongs to the notifications app, which tenants does not import: it is asked for
    through the app registry, so tenants works (without the figures) where it is not installed.
    """
    from django.apps import apps

    try:
        provider = apps.get_app_config("notifications").online_counts
    except (LookupError, AttributeError):
        return None
    try:
        return provider(tenant_ids)
    except Exception:  # the presence store is down: the list still renders
        return None


def hotspot_online(*, user: User) -> dict[str, Any]:
    """ "Online on the hotspot": active RADIUS sessions now, in all and per router."""
    routers = online_by_router(tenant_id=user.tenant_id)
    return {"total": sum(r["online"] for r in routers), "routers": routers}
