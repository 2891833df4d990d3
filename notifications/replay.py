"""Missed-event replay for `{"action": "resume", "last_id": N}` (issue 5; docs/protocol.md).

Sync (ORM) code, run by the consumer off the event loop. The client's `last_id` names the last
event it received (or, on a page load, the page's resume point). The guarantee: every event of
the socket's groups that the user may see now and that the client cannot have received is
served, once, ordered by position, never by `id > last_id`. Which rows that is comes from the
seen event S's commit-ordered `position` and its visibility horizon (notifications/models.py):

* `position > S.position`: numbered after S was claimed (a late commit lands here), and
* `S.replay_from <= position < S.position` and not published before S was claimed: claimed
  by another publisher (another server process) but sent after S, so possibly after the drop.
  The comparison is on the database's clock, with `NOTIFICATIONS_REPLAY_CLOCK_MARGIN_SECONDS`
  (default 1 s) of slack for a clock step; rows inside the margin may be duplicates.

Audiences are checked now, against the user's current row: the groups are the socket's groups
that `allowed_groups()` still permits (a user moved to another tenant, or removed, gets nothing of
the old tenant), and the role filter of each target uses the current role.

Only events the live path has handed over (published, or claimed and in flight) or will never
push live (older than the publisher's max age) are replayed: an event not yet claimed reaches
the socket live, since the socket joined its groups before it could send `resume`.

No duplicates shown: the server cannot know exactly what a client holds (an in-flight event may
arrive live and in the replay; the margin), so the client drops ids it has shown. Within a page
that is an in-memory set; across page loads the page itself says what it has: `resume_point()`
gives the page's `last_id` (the newest event already published, so anything sent after the
render is replayed) and `seen_ids` (events of the user's groups in that event's window that were
already published at render, so shown in the page's lists). The page config, not
sessionStorage, carries them: it works in a fresh tab, with storage disabled, and states
exactly what that render contained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from notifications.conf import notification_settings as conf
from notifications.events import outbox, relay
from notifications.models import StoredEvent
from notifications.realtime.access import allowed_groups, fresh_user


def replay_limit() -> int:
    """Events at most per resume; a larger gap gets `resync`."""
    return conf.REPLAY_LIMIT


def clock_margin() -> timedelta:
    """Slack on "published before S was claimed" (one database clock, but it may step)."""
    return timedelta(seconds=conf.REPLAY_CLOCK_MARGIN_SECONDS)


def replay_max_age() -> timedelta:
    """A last_id older than this gets `resync`."""
    return timedelta(seconds=conf.REPLAY_MAX_AGE_SECONDS)


@dataclass
class Replay:
    """What to send: the missed event frames (oldest first), or resync=True (reload lists)."""

    frames: list[str] = field(default_factory=list)
    resync: bool = False
    ids: list[int] = field(default_factory=list)  # the event id of each frame
    # the socket id each frame's event excluded (toOthers), for a caller that filters itself
    excluded: list[str | None] = field(default_factory=list)


def _after(seen: dict[str, Any]) -> Q:
    """The rows a client that received `seen` may not have: see the module docstring."""
    window = Q(position__gt=seen["position"])
    horizon, claimed_at = seen["replay_from"], seen["claimed_at"]
    if horizon is not None and claimed_at is not None and horizon < seen["position"]:
        sent_late = Q(published_at__isnull=True) | Q(published_at__gte=claimed_at - clock_margin())
        window |= Q(position__gte=horizon, position__lt=seen["position"]) & sent_late
    return window


SEEN_FIELDS = ("id", "position", "occurred_at", "replay_from", "claimed_at")


def missed_events(
    *, user_id: int, last_id: int, channels: list[str], exclude: str | None = None
) -> Replay:
    """The frames of the events after `last_id` for `channels` that the user may still see.

    `channels` are the socket's subscribed public groups; last_id 0 means "saw nothing yet".
    `exclude`: the tab's previous socket id; events it caused (toOthers) are not replayed to it
    (a form post redirects to a new page, whose new socket resumes from before the post).
    """
    user, _ = fresh_user(user_id)
    if user is None:
        return Replay()
    groups = [group for group in allowed_groups(user) if group in channels]
    if not groups:
        return Replay()
    now = timezone.now()
    window = Q()
    if last_id:
        seen = StoredEvent.objects.filter(pk=last_id).values(*SEEN_FIELDS).first()
        # Pruned, never published, or too old: the client reloads its lists instead.
        if seen is None or seen["position"] is None:
            return Replay(resync=True)
        if seen["occurred_at"] < now - replay_max_age():
            return Replay(resync=True)
        window = _after(seen)
    limit = replay_limit()
    rows = list(
        StoredEvent.objects.filter(window, position__isnull=False, targets__group__in=groups)
        .filter(
            Q(published_at__isnull=False)
            | Q(publish_attempts__gt=0)
            | Q(occurred_at__lt=now - outbox.max_age())
        )
        .distinct()
        .order_by("position")
        .prefetch_related("targets")[: limit + 1]
    )
    if len(rows) > limit:
        return Replay(resync=True)
    frames: list[str] = []
    ids: list[int] = []
    excluded: list[str | None] = []
    for event in rows:
        if exclude is not None and event.exclude_socket_id == exclude:
            continue
        for target in event.targets.all():
            if target.group in groups and (not target.roles or user.role in target.roles):
                frames.append(relay.frame(event, target.group))
                ids.append(event.id)
                excluded.append(event.exclude_socket_id)
                break  # one frame per event, whatever the number of its groups
    return Replay(frames=frames, ids=ids, excluded=excluded)


@dataclass
class ResumePoint:
    """A page's `last_id` and the ids it already holds in that event's window (`seen_ids`)."""

    last_id: int | None = None
    seen_ids: list[int] = field(default_factory=list)


def _newest_handed_over() -> dict[str, Any] | None:
    now = timezone.now()
    return (
        StoredEvent.objects.filter(position__isnull=False)
        .filter(Q(published_at__isnull=False) | Q(occurred_at__lt=now - outbox.max_age()))
        .order_by("-position")
        .values(*SEEN_FIELDS)
        .first()
    )


def newest_event_id() -> int | None:
    """A resume point for a socket that has joined its groups and received nothing yet: the
    newest event already published (what a page rendered now resumes from). One query."""
    seen = _newest_handed_over()
    return None if seen is None else seen["id"]


def resume_point(user: Any) -> ResumePoint:
    """Where a page rendered now resumes from (module docstring).

    `last_id` is the newest event (by position) already published, or too old to be pushed
    live: every event numbered after it reaches the page live or by replay. Events of the
    user's groups that its replay window would serve but that were published before this
    render are listed in `seen_ids`, so the page does not toast what it already shows.
    Two indexed queries; no per-user table.
    """
    seen = _newest_handed_over()
    if seen is None:
        return ResumePoint()
    point = ResumePoint(last_id=seen["id"])
    if seen["replay_from"] is not None and seen["replay_from"] < seen["position"]:
        point.seen_ids = list(
            StoredEvent.objects.filter(
                _after(seen),
                position__lt=seen["position"],
                published_at__isnull=False,
                targets__group__in=allowed_groups(user),
            )
            .distinct()
            .order_by("position")
            .values_list("id", flat=True)[: replay_limit()]
        )
    return point
