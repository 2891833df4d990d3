"""Package and hotspot-user reads for views, API and admin: always scoped through `for_user`."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.utils import search_q
from config.errors import NotFound

from .models import HotspotSession, HotspotUser, Package, Router


def _pk(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def package_list(*, user: Any, search: str = "", active: bool | None = None) -> QuerySet[Package]:
    """Packages `user` may see; `active` True/False keeps those on/off sale."""
    packages = Package.objects.for_user(user).select_related("tenant")
    search = (search or "").strip()
    if search:
        packages = packages.filter(name__icontains=search)
    if active is not None:
        packages = packages.filter(is_active=active)
    return packages.order_by("tenant__name", "price", "name")


def package_get(*, user: Any, package_id: Any) -> Package:
    package = Package.objects.for_user(user).filter(pk=_pk(package_id)).first()
    if package is None:
        raise NotFound("No such package.")
    return package


def hotspot_user_list(
    *, user: Any, search: str = "", status: str | None = None
) -> QuerySet[HotspotUser]:
    """Hotspot users `user` may see, searched by username or phone digits, newest first."""
    hotspot_users = HotspotUser.objects.for_user(user).select_related("package", "tenant")
    query = search_q(search, "username")
    if query is not None:
        hotspot_users = hotspot_users.filter(query)
    if status:
        hotspot_users = hotspot_users.filter(status=status)
    return hotspot_users.order_by("-created_at", "-pk")


def hotspot_user_get(*, user: Any, hotspot_user_id: Any) -> HotspotUser:
    found = (
        HotspotUser.objects.for_user(user)
        .select_related("package", "tenant")
        .filter(pk=_pk(hotspot_user_id))
        .first()
    )
    if found is None:
        raise NotFound("No such hotspot user.")
    return found


def router_list(*, user: Any) -> QuerySet[Router]:
    return Router.objects.for_user(user).select_related("tenant").order_by("tenant__name", "name")


def router_get(*, user: Any, router_id: Any) -> Router:
    found = Router.objects.for_user(user).filter(pk=_pk(router_id)).first()
    if found is None:
        raise NotFound("No such router.")
    return found


def hotspot_session_list(*, user: Any, status: str | None = None) -> QuerySet[HotspotSession]:
    """Sessions `user` may see, active first, newest first."""
    sessions = HotspotSession.objects.for_user(user).select_related("router", "tenant")
    if status:
        sessions = sessions.filter(status=status)
    return sessions.order_by("status", "-started_at", "-pk")


def online_by_router(*, tenant_id: int) -> list[dict[str, Any]]:
    """Active sessions now, per router of the tenant (the dashboard's "Online on the hotspot")."""
    from django.db.models import Count

    rows = (
        Router.objects.filter(tenant_id=tenant_id)
        .annotate(online=Count("sessions", filter=Q(sessions__status="active")))
        .order_by("name")
        .values("pk", "name", "online")
    )
    return list(rows)
