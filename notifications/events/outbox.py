"""The outbox: stored events waiting to be published, claimed, numbered and settled (sync, ORM).

`claim()` takes a batch of unpublished events under one lock (an advisory lock on PostgreSQL,
SQLite's IMMEDIATE transactions elsewhere), gives each its commit-ordered `position` and a
lease; `settle()` marks what was sent and backs off what failed. Two server processes never both
publish a row; a process that dies mid-send lets its lease run out and another sends it.

On PostgreSQL a claim is one statement after the lock (`_CLAIM_SQL`: number the new rows, take
the horizon, lease the batch) and a settle is one statement, whatever the batch size; the lock
and the claim are sent as one query (one round trip, one implicit transaction), and the lock is
never held across a send. The lock must be taken by a statement of its own *before* the
numbering one: a READ COMMITTED statement reads the rows committed before it started, so one
that waited for the lock inside itself could miss the positions its predecessor just committed.
`notify_publishers()` is the cross-process wake-up
(LISTEN/NOTIFY) a process without a publisher of its own sends with its event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    DateTimeField,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, Least, Now
from django.utils import timezone

from notifications.conf import notification_settings as conf
from notifications.models import EventTarget, StoredEvent

logger = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x686F7473706F74  # "hotspot": serializes claims across server processes
#: session advisory lock held by the claiming publisher's LISTEN connection (relay.Publisher)
LEADER_LOCK_KEY = ADVISORY_LOCK_KEY + 1
#: LISTEN/NOTIFY channel that wakes the server processes' publishers (PostgreSQL only)
WAKE_CHANNEL = "notifications_outbox"
#: rows numbered at most per claim (a claim numbers every new row, and leases `limit` of them)
NUMBER_LIMIT = 1000


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
    """Serialize claims across processes (SQLite's IMMEDIATE transactions already are).

    The claim commits durably (it assigns the replay positions clients resume from: a
    position lost in a database crash after its event was sent could be given to another
    event and hide it from a resume). Only the settle skips the WAL flush (`_SETTLE_SQL`):
    losing one re-sends an event, which clients drop by id.
    """
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


def claim(
    *, ids: Iterable[int] | None = None, limit: int = 100, check_first: bool = True
) -> list[StoredEvent]:
    """Lease up to `limit` unpublished events (only `ids` if given) to this caller.

    Returns them in position order with their targets loaded. A cheap unlocked check comes
    first, so an idle poll costs one indexed query and no lock (`check_first=False` skips it
    when a commit said there is work).
    """
    ids = list(ids) if ids is not None else None
    if check_first:
        queryset = _claimable(timezone.now())
        if ids is not None:
            queryset = queryset.filter(id__in=ids)
        if not _exists(queryset):
            return []
    if connection.vendor == "postgresql":
        return _claim_postgresql(ids, limit)
    rows = _claim_orm(ids, limit)
    if rows:
        # Targets never change once stored: read them after the lock is released.
        prefetch_related_objects(rows, "targets")
    return rows


def _claim_orm(ids: list[int] | None, limit: int) -> list[StoredEvent]:
    """The portable claim (SQLite: its IMMEDIATE transaction is the lock)."""
    with transaction.atomic():
        _lock_claims()
        _assign_positions(NUMBER_LIMIT)
        now = timezone.now()
        queryset = _claimable(now).filter(position__isnull=False)
        if ids is not None:
            queryset = queryset.filter(id__in=ids)
        rows = list(queryset.order_by("position")[:limit])
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


#: The PostgreSQL claim in one statement, run under the advisory lock. Step by step, as
#: `_claim_orm` does it in several: number the committed rows that have no position yet in id
#: order after the highest position (`fresh`); the batch is the lowest `limit` claimable
#: positions; its horizon floor is the lowest position still unpublished outside it (rows
#: too old to push live left out), new positions included; one UPDATE writes the positions of
#: all fresh rows and the lease, attempt, horizon and first claim time of the batch's rows.
#: (In PostgreSQL LEAST ignores NULLs: LEAST(replay_from, floor, own) is `_horizon`'s rule.)
_CLAIM_SQL = """
WITH fresh AS (
    SELECT f.id, f.lease_until, f.occurred_at, f.published_at,
        (SELECT COALESCE(MAX(position), 0) FROM {events})
            + ROW_NUMBER() OVER (ORDER BY f.id) AS pos
    FROM (
        SELECT id, lease_until, occurred_at, published_at FROM {events}
        WHERE position IS NULL ORDER BY id LIMIT %(number)s
    ) AS f
), cand AS (
    SELECT id, position AS pos, lease_until, occurred_at FROM {events}
    WHERE published_at IS NULL AND position IS NOT NULL
    UNION ALL
    SELECT id, pos, lease_until, occurred_at FROM fresh WHERE published_at IS NULL
), batch AS (
    SELECT id, pos FROM cand
    WHERE (lease_until IS NULL OR lease_until <= %(now)s) AND occurred_at >= %(oldest)s {only}
    ORDER BY pos LIMIT %(limit)s
), floor AS (
    SELECT MIN(pos) AS floor FROM cand
    WHERE occurred_at >= %(oldest)s AND id NOT IN (SELECT id FROM batch)
), plan AS (
    SELECT id, pos, FALSE AS claimed FROM fresh WHERE id NOT IN (SELECT id FROM batch)
    UNION ALL
    SELECT id, pos, TRUE FROM batch
), updated AS (
    UPDATE {events} AS e SET
        position = COALESCE(e.position, plan.pos),
        lease_until = CASE WHEN plan.claimed THEN %(until)s ELSE e.lease_until END,
        publish_attempts = e.publish_attempts + CASE WHEN plan.claimed THEN 1 ELSE 0 END,
        replay_from = CASE WHEN plan.claimed
            THEN LEAST(e.replay_from, (SELECT floor FROM floor), plan.pos)
            ELSE e.replay_from END,
        claimed_at = CASE WHEN plan.claimed
            THEN COALESCE(e.claimed_at, CURRENT_TIMESTAMP) ELSE e.claimed_at END
    FROM plan
    WHERE e.id = plan.id
    RETURNING e.*, plan.claimed AS claimed_now
)
SELECT updated.*, (
    SELECT json_agg(json_build_array(t."group", t.roles) ORDER BY t.id)
    FROM {targets} AS t WHERE t.event_id = updated.id
) AS target_list
FROM updated WHERE claimed_now ORDER BY position
"""


def _claim_postgresql(ids: list[int] | None, limit: int) -> list[StoredEvent]:
    sql, params = claim_statement(ids, limit)
    with connection.cursor() as cursor:
        # (the lock by a statement of its own, before the claim's: see the module docstring)
        _execute_planned(cursor, sql, params, lock=True)
        return _claimed_rows(cursor)


def claim_statement(ids: list[int] | None, limit: int) -> tuple[str, dict[str, Any]]:
    """The PostgreSQL claim's statement and parameters (run after `CLAIM_LOCK_SQL`, same params)."""
    now = timezone.now()
    sql = _CLAIM_SQL.format(
        events=StoredEvent._meta.db_table,
        targets=EventTarget._meta.db_table,
        only="AND id = ANY(%(ids)s)" if ids is not None else "",
    )
    params = {
        "lock": ADVISORY_LOCK_KEY,
        "number": NUMBER_LIMIT,
        "now": now,
        "oldest": now - max_age(),
        "limit": limit,
        "until": now + lease(),
        "ids": ids,
    }
    return sql, params


#: The plan of the outbox's scans on PostgreSQL, for the transaction: index scans and nested
#: loops only, no JIT. The outbox is a queue: every row is inserted, numbered and published (two
#: non-HOT updates), so until a vacuum its indexes of unnumbered and unpublished rows hold an
#: entry for each old row version. A plain index scan marks the dead ones it meets and later
#: scans skip them; a bitmap scan never does and visits every one, with its heap page, each
#: time. A poor estimate passed `jit_above_cost` (compiling took 56 of a claim's 59 ms), and
#: with statistics taken during a backlog the planner merge-joined the batch to the whole
#: primary key. With fresh statistics it picks these plans itself; the settings keep it there
#: when they are not, as the claim's partial indexes (models.StoredEvent.Meta) keep its scans
#: on them (bench/outbox_dead_rows.py, bench/RESULTS.md §19). While a long transaction holds
#: back the horizon (pg_dump, a long report) no entry can be marked, and an index scan then
#: visits each dead one's row: dearer than a bitmap scan, which reads each page once. Keeping
#: such transactions off the primary, and vacuum frequent, keeps it cheap.
_INDEX_SCANS = (
    "set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true), "
    "set_config('jit', 'off', true), set_config('enable_mergejoin', 'off', true), "
    "set_config('enable_hashjoin', 'off', true)"
)
INDEX_SCANS_SQL = f"SELECT {_INDEX_SCANS}"
#: The claim's lock, and the plan settings of `INDEX_SCANS_SQL`.
CLAIM_LOCK_SQL = f"SELECT pg_advisory_xact_lock(%(lock)s), {_INDEX_SCANS}"


def _execute_planned(cursor: Any, sql: str, params: Any, *, lock: bool = False) -> None:
    """Run `INDEX_SCANS_SQL` (`CLAIM_LOCK_SQL` with `lock`: `params` is then a dict holding
    `lock`), then `sql`, in one transaction; the cursor is left on `sql`'s result.

    Outside a transaction that is one round trip (client-side binding sends one simple query,
    run as one implicit transaction, still two statements). Inside the caller's transaction
    the settings last until it ends.
    """
    first = CLAIM_LOCK_SQL if lock else INDEX_SCANS_SQL
    server_binding = connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    if connection.in_atomic_block or server_binding is True:
        with transaction.atomic():
            cursor.execute(first, params if lock else None)
            cursor.execute(sql, params)
        return
    cursor.execute(f"{first}; {sql}", params)
    cursor.nextset()


def _exists(queryset: QuerySet) -> bool:
    """`queryset.exists()`, planned with index scans on PostgreSQL (`INDEX_SCANS_SQL`)."""
    if connection.vendor != "postgresql":
        return queryset.exists()
    try:
        sql, params = queryset.order_by().values("pk")[:1].query.sql_with_params()
    except EmptyResultSet:  # a filter that matches nothing (`id__in=[]`), as exists() says
        return False
    with connection.cursor() as cursor:
        _execute_planned(cursor, sql, params)
        return cursor.fetchone() is not None


def _claimed_rows(cursor: Any) -> list[StoredEvent]:
    """StoredEvents from `_CLAIM_SQL`'s result, their targets loaded as prefetch_related would."""
    fields = StoredEvent._meta.concrete_fields
    columns = {column.name: index for index, column in enumerate(cursor.description)}
    where = [columns[field.column] for field in fields]
    converters = [
        (position, converter)
        for position, field in enumerate(fields)
        for converter in field.get_db_converters(connection)
    ]
    listed_at = columns["target_list"]
    names = [field.attname for field in fields]
    rows = []
    for record in cursor.fetchall():
        values = [record[index] for index in where]
        for position, converter in converters:
            values[position] = converter(values[position], None, connection)
        row = StoredEvent.from_db(connection.alias, names, values)
        listed = record[listed_at]
        listed = json.loads(listed) if isinstance(listed, str) else listed or []
        # The prefetch cache `row.targets.all()` returns. A bare QuerySet: building the
        # related manager's filtered one cost more than the rest of the row (it only serves
        # this list; a `.filter()` on it would not be restricted to the row).
        targets = QuerySet(EventTarget)
        targets._result_cache = [
            EventTarget(event_id=row.id, group=group, roles=roles) for group, roles in listed
        ]
        targets._prefetch_done = True
        row._prefetched_objects_cache = {"targets": targets}
        rows.append(row)
    return rows


def notify_publishers() -> None:
    """Wake the publishers of the server processes when this transaction commits (PostgreSQL's
    NOTIFY is delivered at commit, and never for a rollback). Elsewhere they poll."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [WAKE_CHANNEL])


#: A follower's wake-up for the claiming publisher: a NOTIFY in an autocommit statement that
#: does not wait for the WAL flush (losing it costs a poll, not an event).
WAKE_CLAIMER_SQL = "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, '')"


def wake_claimer() -> None:
    """Tell the claiming publisher (another process) that this one committed events."""
    with connection.cursor() as cursor:
        cursor.execute(WAKE_CLAIMER_SQL, [WAKE_CHANNEL])


def stale_claimable(age: timedelta) -> bool:
    """Are there claimable events committed at least `age` ago (the claimer is not keeping up)?"""
    now = timezone.now()
    return _exists(_claimable(now).filter(occurred_at__lte=now - age))


_SETTLE_SQL = (
    "UPDATE {events} SET published_at = CURRENT_TIMESTAMP, lease_until = NULL "
    "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS cfg "
    "WHERE id = ANY(%s) AND published_at IS NULL"
)


def settle(
    published: list[int], failed: list[StoredEvent], released: Iterable[StoredEvent] = ()
) -> None:
    """Mark sent rows published; give failed ones back after a back-off delay, and `released`
    ones (the batch's tail, not tried: see relay._send) at once. One statement.

    `published_at` is the database's clock, compared with other rows' `claimed_at` by replay.
    A row of this batch sent after one that failed: the failed one will reach sockets after
    it, so replay from this row must cover it (lowered before its retry: it is leased).
    """
    released = list(released)
    if not published and not failed and not released:
        return
    if connection.vendor == "postgresql" and not failed and not released:
        # The usual case in one round trip: an autocommit UPDATE that does not wait for the
        # WAL flush (see _lock_claims; set_config lasts until the statement commits).
        with connection.cursor() as cursor:
            cursor.execute(_SETTLE_SQL.format(events=StoredEvent._meta.db_table), [list(published)])
        return
    now = timezone.now()
    unpublished = Q(published_at__isnull=True)
    changes: dict[str, Any] = {}
    if published:
        changes["published_at"] = Case(
            When(unpublished & Q(id__in=published), then=Now()), default=F("published_at")
        )
    lease_whens = (
        [When(unpublished & Q(id__in=published), then=Value(None, output_field=DateTimeField()))]
        if published
        else []
    )
    lease_whens += [
        When(unpublished & Q(id=row.id), then=Value(now + retry_delay(row.publish_attempts)))
        for row in failed
    ]
    if released:
        lease_whens.append(
            When(
                unpublished & Q(id__in=[row.id for row in released]),
                then=Value(None, output_field=DateTimeField()),
            )
        )
    changes["lease_until"] = Case(
        *lease_whens, default=F("lease_until"), output_field=DateTimeField()
    )
    if published and failed:
        lowest = min(row.position for row in failed if row.position is not None)
        changes["replay_from"] = Case(
            When(
                Q(id__in=published, position__gt=lowest),
                then=Least(F("replay_from"), Value(lowest, BigIntegerField())),
            ),
            default=F("replay_from"),
        )
    touched = [*published, *(row.id for row in failed), *(row.id for row in released)]
    StoredEvent.objects.filter(id__in=touched).update(**changes)
