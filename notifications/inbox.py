"""The notification inbox: which stored events a user sees, and their per-user read state.

Every event is stored once (notifications.models.StoredEvent) with its target groups; a user's
inbox is the events of the groups `allowed_groups(user)` permits now, filtered by role, newest
first. Read state costs one row per user for "mark all as read" (a position watermark) plus one
row per event clicked above it. Marking read sends a `NotificationRead` frame to `user.<id>`
through the channel layer after commit, so every tab and device of that user updates its bell.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from config.errors import NotFound
from notifications.models import InboxState, NotificationRead, StoredEvent
from notifications.realtime.access import allowed_groups
from notifications.realtime.groups import user_group
from notifications.realtime.protocol import event_frame, event_message
from notifications.realtime.send import group_send


def visible_events(user: Any, *, category: str | None = None) -> QuerySet[StoredEvent]:
    """The events meant for `user` (groups and role checked now), newest first."""
    groups = allowed_groups(user)
    if not groups:
        return StoredEvent.objects.none()
    # Roles are a JSON list of names; match the quoted name (portable across SQLite/PostgreSQL).
    role_ok = Q(targets__roles__isnull=True) | Q(targets__roles__icontains=f'"{user.role}"')
    queryset = StoredEvent.objects.filter(
        Q(targets__group__in=groups) & role_ok, position__isnull=False
    )
    if category:
        queryset = queryset.filter(category=category)
    return queryset.distinct().order_by("-position")


def _watermark(user: Any) -> int:
    return InboxState.objects.filter(user=user).values_list("read_up_to", flat=True).first() or 0


def unread_events(user: Any) -> QuerySet[StoredEvent]:
    return visible_events(user).filter(position__gt=_watermark(user)).exclude(reads__user=user)


def unread_count(user: Any) -> int:
    return unread_events(user).count()


def read_ids(user: Any, events: Iterable[StoredEvent]) -> set[int]:
    """Which of `events` (e.g. one page of the list) `user` has read."""
    events = list(events)
    watermark = _watermark(user)
    read = {e.id for e in events if e.position is not None and e.position <= watermark}
    above = [e.id for e in events if e.id not in read]
    read.update(
        NotificationRead.objects.filter(user=user, event_id__in=above).values_list(
            "event_id", flat=True
        )
    )
    return read


@transaction.atomic
def mark_read(*, user: Any, event_ids: list[int]) -> int:
    """Mark these events read for `user`; NotFound if one is not in their inbox. Unread left."""
    wanted = set(event_ids)
    found = set(visible_events(user).filter(id__in=wanted).values_list("id", flat=True))
    if missing := wanted - found:
        raise NotFound(f"No such notification: {min(missing)}.")
    now = timezone.now()
    NotificationRead.objects.bulk_create(
        [NotificationRead(user=user, event_id=pk, read_at=now) for pk in sorted(found)],
        ignore_conflicts=True,
    )
    count = unread_count(user)
    transaction.on_commit(partial(_announce, user.pk, sorted(found), False, count))
    return count


@transaction.atomic
def mark_all_read(*, user: Any) -> int:
    """Everything in `user`'s inbox up to now is read (one row, whatever the number)."""
    top = visible_events(user).aggregate(top=Max("position"))["top"] or 0
    state, _ = InboxState.objects.select_for_update().get_or_create(user=user)
    if top > state.read_up_to:
        state.read_up_to = top
        state.save(update_fields=["read_up_to", "updated_at"])
    NotificationRead.objects.filter(user=user, event__position__lte=state.read_up_to).delete()
    count = unread_count(user)
    transaction.on_commit(partial(_announce, user.pk, [], True, count))
    return count


def read_frame(user_id: int, ids: list[int], everything: bool, unread: int) -> str:
    """The `NotificationRead` wire frame (an `event` frame with no id: it is not stored)."""
    return event_frame(
        id=None,
        event="NotificationRead",
        category="system",
        level="info",
        title="",
        message="",
        channel=user_group(user_id),
        data={"ids": ids, "all": everything, "unread": unread},
        occurred_at=timezone.now(),
    )


def _announce(user_id: int, ids: list[int], everything: bool, unread: int) -> None:
    """Tell every socket of the user (all tabs, all devices); the read is stored either way."""
    text = read_frame(user_id, ids, everything, unread)
    group_send(user_group(user_id), event_message(text))


def prune(*, days: int = 90) -> int:
    """Delete stored events (with their targets and reads) older than `days`; how many."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, per_model = StoredEvent.objects.filter(occurred_at__lt=cutoff).delete()
    return per_model.get(StoredEvent._meta.label, 0)
