"""User reads for views, API and admin: always scoped through `for_user`."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from config.errors import NotFound

from .models import User


def user_list(
    *,
    user: Any,
    search: str = "",
    status: str | None = None,
    role: str | None = None,
    tenant_id: int | None = None,
) -> QuerySet[User]:
    """Accounts `user` may see, optionally searched (name, username, email) and filtered."""
    users = User.objects.for_user(user).select_related("tenant")
    search = (search or "").strip()
    if search:
        users = users.filter(
            Q(username__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(email__icontains=search)
        )
    if status:
        users = users.filter(status=status)
    if role:
        users = users.filter(role=role)
    if tenant_id is not None:
        users = users.filter(tenant_id=tenant_id)
    return users.order_by("username")


def user_get(*, user: Any, user_id: Any) -> User:
    """One account `user` may see; NotFound for another tenant's (indistinguishable from none)."""
    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        pk = 0
    found = User.objects.for_user(user).select_related("tenant").filter(pk=pk).first()
    if found is None:
        raise NotFound("No such user.")
    return found
