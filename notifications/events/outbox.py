"""The outbox: stored events waiting to be published, claimed, numbered and settled (sync, ORM).

`claim()` takes a batch of unpublished events under one lock (an advisory lock on PostgreSQL,
SQLite's IMMEDIATE transactions elsewhere), gives each its commit-ordered `position` and a
lease; `settle()` marks what was sent and backs off what failed. Two server processes never both
publish a row; a process that dies mid-send lets its lease run out and another sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Max, Min, Q, Value
from django.db.models.functions import Coalesce, Least, Now
from django.utils import timezone

from notifications.conf import notification_settings as conf
from notifications.models import StoredEvent

logger = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x686F7473706F74  # "hotspot": serializes claims across server processes


def lease() -> timedelta:
    return timedelta(seconds=conf.LEASE_SECONDS)


def max_age() -> timedelta:
    """Unpublished events older than this are not pushed live any more (they stay stored)."""
    return timedelta(seconds=conf.PUBLISH_MAX_AGE_SECONDS)


def retry_delay(attempts: int) -> timedelta:
    """Back off after a failed send: 0.25 s, 0.5 s, 1 s ... capped (default 2 s)."""
    cap = conf.RETRY_MAX_SECONDS
    return timedelta(seconds=min(cap, 0.25 * 2 ** max(0, attempts - 1)))


# --- claim / settle (sync, database) -------------------------------------------------------


def _lock_claims() -> None:
    """Serialize claims across processes (SQLite's IMMEDIATE transactions already are)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])


def _assign_positions(limit: int = 1000) -> None:
    """Number committed, unnumbered rows in id order: the commit-ordered replay sequence."""
    pending = list(
        StoredEvent.objects.filter(position__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    if not pending:
        return
    top = StoredEvent.objects.aggregate(top=Max("position"))["top"] or 0
    for offset, pk in enumerate(pending, start=1):
        StoredEvent.objects.filter(pk=pk).update(position=top + offset)


def _unpublished_floor(now: Any, batch: list[int]) -> int | None:
    """The lowest position not yet published outside `batch` (for `replay_from`, models.py).

    Rows older than the publish max age are left out: they are never pushed live, so they
    cannot reach a socket late (replay serves them whatever their age). One query on the
    partial index of unpublished rows.
    """
    return (
        StoredEvent.objects.filter(
            published_at__isnull=True, occurred_at__gte=now - max_age(), position__isnull=False
        )
        .exclude(id__in=batch)
        .aggregate(floor=Min("position"))["floor"]
    )


def _horizon(floor: int | None) -> Any:
    """A claimed row's `replay_from`: the floor outside its batch, or its own position.

    Rows of one batch are sent in position order by one loop, so a lower one is late only if
    its send failed; `settle()` then lowers the horizon of the rows sent after it.
    """
    own = F("position")
    return own if floor is None else Least(Value(floor, BigIntegerField()), own)


def _claimable(now: Any) -> Any:
    return StoredEvent.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now),
        published_at__isnull=True,
        occurred_at__gte=now - max_age(),
    )


def claim(*, ids: Iterable[int] | None = None, limit: int = 100) -> list[StoredEvent]:
    """Lease up to `limit` unpublished events (only `ids` if given) to this caller.

    Returns them with their targets loaded. A cheap unlocked check comes first, so an idle
    poll costs one indexed query and no lock.
    """
    ids = list(ids) if ids is not None else None
    queryset = _claimable(timezone.now())
    if ids is not None:
        queryset = queryset.filter(id__in=ids)
    if not queryset.exists():
        return []
    with transaction.atomic():
        _lock_claims()
        _assign_positions()
        now = timezone.now()
        queryset = _claimable(now).filter(position__isnull=False)
        if ids is not None:
            queryset = queryset.filter(id__in=ids)
        rows = list(queryset.order_by("position").prefetch_related("targets")[:limit])
        if rows:
            # The visibility horizon, taken before any of these rows is sent. A retried row
            # keeps the lowest horizon and the first claim time of all its attempts (an earlier
            # attempt may have reached some of its groups).
            batch = [row.id for row in rows]
            horizon = _horizon(_unpublished_floor(now, batch))
            StoredEvent.objects.filter(id__in=batch).update(
                lease_until=now + lease(),
                publish_attempts=F("publish_attempts") + 1,
                replay_from=Coalesce(Least(F("replay_from"), horizon), horizon),
                claimed_at=Coalesce(F("claimed_at"), Now()),
            )
            for row in rows:
                row.publish_attempts += 1  # this attempt
    return rows


def settle(published: list[int], failed: list[StoredEvent]) -> None:
    """Mark sent rows published; give failed ones back after a back-off delay.

    `published_at` is the database's clock, compared with other rows' `claimed_at` by replay.
    """
    now = timezone.now()
    if published:
        StoredEvent.objects.filter(id__in=published, published_at__isnull=True).update(
            published_at=Now(), lease_until=None
        )
    for row in failed:
        StoredEvent.objects.filter(id=row.id, published_at__isnull=True).update(
            lease_until=now + retry_delay(row.publish_attempts)
        )
    if published and failed:
        # A row of this batch sent after one that failed: the failed one will reach sockets
        # after it, so replay from this row must cover it (before its retry: it is leased).
        lowest = min(row.position for row in failed if row.position is not None)
        StoredEvent.objects.filter(id__in=published, position__gt=lowest).update(
            replay_from=Least(F("replay_from"), Value(lowest, BigIntegerField()))
        )
