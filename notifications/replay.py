"""Missed-event replay for `{"action": "resume", "last_id": N}` (issue 5; docs/protocol.md).

Sync (ORM) code, run by the consumer off the event loop. The client's `last_id` is translated
into that event's commit-ordered `position` (see notifications/models.py), and everything after
it is served ordered by position, never `id > last_id`: a transaction that took a lower id but
committed later has a higher position and is not skipped.

Audiences are checked now, against the user's current row: the groups are the socket's groups
that `allowed_groups()` still permits (a user moved to another tenant, or removed, gets nothing of
the old tenant), and the role filter of each target uses the current role.

Only events the live path has handed over (published, or claimed and in flight) or will never
push live (older than the publisher's max age) are replayed: an event not yet claimed reaches
the socket live, since the socket joined its groups before it could send `resume`. What overlaps
(an event in flight during the replay) is deduped by `id` in the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from . import publisher
from .auth import allowed_groups
from .models import StoredEvent

REPLAY_LIMIT = 500  # events at most per resume; a larger gap gets `resync`
REPLAY_MAX_AGE = timedelta(days=1)  # a last_id older than this gets `resync`


def replay_limit() -> int:
    return int(getattr(settings, "NOTIFICATIONS_REPLAY_LIMIT", REPLAY_LIMIT))


def replay_max_age() -> timedelta:
    seconds = getattr(settings, "NOTIFICATIONS_REPLAY_MAX_AGE_SECONDS", None)
    return REPLAY_MAX_AGE if seconds is None else timedelta(seconds=float(seconds))


@dataclass
class Replay:
    """What to send: the missed event frames (oldest first), or resync=True (reload lists)."""

    frames: list[str] = field(default_factory=list)
    resync: bool = False


def _current_user(user_id: int) -> Any:
    from accounts.services import login_block_reason

    user = get_user_model().objects.select_related("tenant").filter(pk=user_id).first()
    if user is None or not user.is_active or login_block_reason(user):
        return None
    return user


def missed_events(
    *, user_id: int, last_id: int, channels: list[str], exclude: str | None = None
) -> Replay:
    """The frames of the events after `last_id` for `channels` that the user may still see.

    `channels` are the socket's subscribed public groups; last_id 0 means "saw nothing yet".
    `exclude`: the tab's previous socket id; events it caused (toOthers) are not replayed to it
    (a form post redirects to a new page, whose new socket resumes from before the post).
    """
    user = _current_user(user_id)
    if user is None:
        return Replay()
    groups = [group for group in allowed_groups(user) if group in channels]
    if not groups:
        return Replay()
    now = timezone.now()
    start = 0
    if last_id:
        seen = StoredEvent.objects.filter(pk=last_id).values("position", "occurred_at").first()
        # Pruned, never published, or too old: the client reloads its lists instead.
        if seen is None or seen["position"] is None:
            return Replay(resync=True)
        if seen["occurred_at"] < now - replay_max_age():
            return Replay(resync=True)
        start = seen["position"]
    limit = replay_limit()
    rows = list(
        StoredEvent.objects.filter(position__gt=start, targets__group__in=groups)
        .filter(
            Q(published_at__isnull=False)
            | Q(publish_attempts__gt=0)
            | Q(occurred_at__lt=now - publisher.max_age())
        )
        .distinct()
        .order_by("position")
        .prefetch_related("targets")[: limit + 1]
    )
    if len(rows) > limit:
        return Replay(resync=True)
    frames = []
    for event in rows:
        if exclude is not None and event.exclude_socket_id == exclude:
            continue
        for target in event.targets.all():
            if target.group in groups and (not target.roles or user.role in target.roles):
                frames.append(publisher.frame(event, target.group))
                break  # one frame per event, whatever the number of its groups
    return Replay(frames=frames)
