"""Platform announcements: a system admin's notice to every active tenant's users (and the other
system admins), as a catalog event (`PlatformAnnouncement`) stored and published like any other.
/system/announce/ and `fire_event ... --all-tenants` send them."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from config.errors import PermissionDenied
from notifications.events import catalog
from notifications.events.broadcast import broadcast
from notifications.models import StoredEvent

MAX_TITLE = 120
MAX_MESSAGE = 1000


@transaction.atomic
def announce(*, message: str, title: str = "", level: str = "info", by: User | None) -> StoredEvent:
    """Store and (after commit) publish one announcement; only system admins (or the shell,
    by=None) may send one."""
    if by is not None and not by.is_system_admin:
        raise PermissionDenied("Only system admins can announce to every tenant.")
    message = (message or "").strip()
    if not message:
        raise ValueError("An announcement needs its text.")
    event = catalog.PlatformAnnouncement.create(
        message=message[:MAX_MESSAGE],
        title=(title or "").strip()[:MAX_TITLE] or None,
        level=level,
        by=by,
    )
    return broadcast(event)
