"""Tenant reads for views, API and admin: always scoped through `for_user`."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from config.errors import NotFound

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
