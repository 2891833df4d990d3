"""Presence reads for server-rendered pages: who is online, online counts, who may be named.

Domain apps never import notifications: their templates load these through the `presence`
template tags (notifications/templatetags/presence.py), and the Django admin of tenants asks the
app registry (`apps.get_app_config("notifications").online_counts`). Every read is best effort:
a presence store that is down leaves a page without live figures, never without the page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from notifications.realtime import presence
from notifications.realtime.groups import tenant_scope

logger = logging.getLogger(__name__)


def online_now(user: Any) -> list[dict[str, Any]]:
    """Who is online in the user's tenant, for the first render of the dashboard.

    The viewer is listed too: their page is open now, and their socket joins a moment after the
    render (the live list then comes from the `presence` frame).
    """
    if getattr(user, "tenant_id", None) is None:
        return []
    try:
        members = presence.online_members(tenant_scope(user.tenant_id))
    except Exception:
        logger.warning("could not read who is online", exc_info=True)
        members = []
    if not any(m.get("id") == user.pk for m in members):
        members = sorted(
            [*members, presence.member_info(user)],
            key=lambda m: (str(m.get("name", "")).lower(), int(m.get("id", 0))),
        )
    return members


def presence_channel(user: Any) -> str:
    """The channel a page watches for its tenant's presence ("" without a tenant)."""
    tenant_id = getattr(user, "tenant_id", None)
    return tenant_scope(tenant_id) if tenant_id is not None else ""


def online_counts(tenant_ids: Iterable[int]) -> dict[int, int]:
    """People online per tenant, in one store call; {} when the store is down."""
    ids = list(tenant_ids)
    try:
        return presence.online_counts(ids)
    except Exception:  # the presence store is down: the live counts fill in later
        logger.warning("could not read online counts", exc_info=True)
        return {}


def view_record(user: Any, kind: str, pk: Any) -> str | None:
    """The record name ("user.42") a page announces on its socket, if `user` may edit it."""
    record = f"{kind}.{pk}"
    return record if presence.record_access(user, record) else None
