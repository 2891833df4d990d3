"""The one way an event leaves the server: `broadcast(event) -> StoredEvent`.

It writes the event (and its target groups) in the caller's transaction, so a rolled-back change
emits nothing and a committed one is never lost. Publishing is not the caller's work (issue 16):
after commit it only wakes this process's publisher (notifications/events/relay.py), a few
microseconds, and that publisher sends the outbox in batches on its own event loop. A process
that runs no publisher (a `manage.py shell`, `fire_event`) wakes the server processes' ones
instead: a NOTIFY in the same transaction on PostgreSQL (delivered at commit), their ~200 ms poll
elsewhere. If the layer is down the row stays unpublished and is sent when the layer is back.

Usable from the shell in one line::

    from notifications.events.broadcast import broadcast
    from notifications.events.catalog import UserCreated
    broadcast(UserCreated.from_user(user))
"""

from __future__ import annotations

import functools
import logging
from functools import partial
from typing import Any

from django.db import connection, transaction

from notifications.context import clean_socket_id, current_socket_id
from notifications.events import outbox, relay
from notifications.events.catalog import Event
from notifications.models import EventTarget, StoredEvent

logger = logging.getLogger(__name__)

_UNSET = object()


def broadcast(event: Event, *, exclude: str | None | object = _UNSET) -> StoredEvent:
    """Store `event` now and publish it once the current transaction commits.

    `exclude` is the socket id that must not receive it (toOthers); by default the one of the
    current request (`X-Socket-ID`, see notifications.middleware).

    No savepoint of its own: the event belongs to the caller's change, so a broadcast that
    fails (a database error) fails the caller's transaction too, rather than letting the
    change commit without its event. On PostgreSQL the event, its targets and (without a
    publisher in this process) the NOTIFY are one statement: one round trip inside the
    caller's transaction, where the ORM took four (issue 16: the emitters' threads sat
    "idle in transaction" between them).
    """
    socket_id = current_socket_id.get() if exclude is _UNSET else clean_socket_id(exclude)
    stored = StoredEvent(
        name=event.name,
        category=event.category,
        level=event.level,
        title=event.title[:200],
        message=event.message,
        translations={
            code: {"title": text["title"][:200], "message": text["message"]}
            for code, text in event.translations.items()
        },
        data=event.data,
        exclude_socket_id=socket_id or "",
        occurred_at=event.occurred_at,
    )
    targets = [
        EventTarget(group=t.group, roles=list(t.roles) if t.roles else None) for t in event.targets
    ]
    notify = relay.current() is None
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            _insert_postgresql(stored, targets, notify=notify)
        else:
            stored.save(force_insert=True)
            for target in targets:
                target.event = stored
            EventTarget.objects.bulk_create(targets)
            if notify:
                outbox.notify_publishers()
        transaction.on_commit(partial(_after_commit, stored.pk), robust=True)
    return stored


#: The event, its targets and the NOTIFY as one statement (`_insert_postgresql`). The targets
#: come as two arrays (groups, roles), so the statement has one shape whatever their number:
#: one prepared plan, and no bind-parameter limit for an event to thousands of groups.
_INSERT_EVENT_SQL = "WITH e AS (INSERT INTO {events} ({columns}) VALUES ({values}) RETURNING id)"
_INSERT_TARGETS_SQL = (
    ", t AS (INSERT INTO {targets} ({event}, {group}, {roles}) "
    "SELECT e.id, v.g, v.r FROM e, unnest(%s::text[], %s::jsonb[]) AS v (g, r))"
)
_SELECT_ID_SQL = " SELECT id{notify} FROM e"


@functools.cache
def _insert_sql(notify: bool) -> str:
    """The statement (two shapes: with or without the NOTIFY)."""
    quote = connection.ops.quote_name
    fields = _event_fields()
    meta = EventTarget._meta
    sql = _INSERT_EVENT_SQL.format(
        events=quote(StoredEvent._meta.db_table),
        columns=", ".join(quote(f.column) for f in fields),
        values=", ".join(["%s"] * len(fields)),
    ) + _INSERT_TARGETS_SQL.format(
        targets=quote(meta.db_table),
        event=quote(meta.get_field("event").column),
        group=quote(meta.get_field("group").column),
        roles=quote(meta.get_field("roles").column),
    )
    return sql + _SELECT_ID_SQL.format(notify=", pg_notify(%s, '')" if notify else "")


@functools.cache
def _event_fields() -> list[Any]:
    return [f for f in StoredEvent._meta.concrete_fields if not f.primary_key]


def _insert_postgresql(stored: StoredEvent, targets: list[EventTarget], *, notify: bool) -> None:
    """INSERT the event and its targets (and NOTIFY the publishers) in one statement."""
    params: list[Any] = [
        # pre_save, as Model.save does: a field with auto_now(_add) gets its value here too
        f.get_db_prep_save(f.pre_save(stored, True), connection)
        for f in _event_fields()
    ]
    group = EventTarget._meta.get_field("group")
    roles = EventTarget._meta.get_field("roles")
    params.append([group.get_db_prep_save(t.group, connection) for t in targets])
    params.append([roles.get_db_prep_save(t.roles, connection) for t in targets])
    if notify:
        params.append(outbox.WAKE_CHANNEL)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(notify), params)
        (stored.pk, *_) = cursor.fetchone()
    stored._state.adding = False
    stored._state.db = connection.alias
    for target in targets:
        target.event = stored


def _after_commit(event_id: int) -> None:
    """Wake this process's publisher (thread-safe, microseconds); never raises."""
    try:
        relay.wake()
    except Exception:  # the request must succeed; the row stays for the publishers' poll
        logger.exception("waking the publisher for event %s failed; it polls", event_id)
