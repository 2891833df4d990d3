"""Payment reads for views, API and admin: always scoped through `for_user`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from config.errors import NotFound

from .models import Payment


def payment_list(*, user: Any, search: str = "", status: str | None = None) -> QuerySet[Payment]:
    """Payments `user` may see, searched by provider reference or phone digits, newest first."""
    payments = Payment.objects.for_user(user).select_related("package", "tenant")
    search = (search or "").strip()
    if search:
        query = Q(provider_reference__icontains=search)
        # Phones are stored 254…; a local "07…" search matches without its trunk zero.
        digits = "".join(ch for ch in search if ch.isdigit()).lstrip("0")
        if digits:
            query |= Q(phone__contains=digits)
        payments = payments.filter(query)
    if status:
        payments = payments.filter(status=status)
    return payments.order_by("-created_at", "-pk")


def payment_get(*, user: Any, payment_id: Any) -> Payment:
    try:
        pk = int(payment_id)
    except (TypeError, ValueError):
        pk = 0
    found = Payment.objects.for_user(user).select_related("package", "tenant").filter(pk=pk).first()
    if found is None:
        raise NotFound("No such payment.")
    return found


def payment_totals(*, user: Any) -> dict[str, Any]:
    """Counts per status and the completed revenue `user` may see (for dashboards)."""
    rows = (
        Payment.objects.for_user(user)
        .values("status")
        .order_by()
        .annotate(count=Count("pk"), total=Sum("amount"))
    )
    counts = dict.fromkeys(Payment.Status.values, 0)
    revenue = Decimal("0")
    for row in rows:
        counts[row["status"]] = row["count"]
        if row["status"] == Payment.Status.COMPLETED:
            revenue = row["total"] or Decimal("0")
    return {"counts": counts, "revenue": revenue}
