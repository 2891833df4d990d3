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

import logging
from functools import partial

from django.db import transaction

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
    """
    socket_id = current_socket_id.get() if exclude is _UNSET else clean_socket_id(exclude)
    with transaction.atomic():
        stored = StoredEvent.objects.create(
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
        EventTarget.objects.bulk_create(
            EventTarget(event=stored, group=t.group, roles=list(t.roles) if t.roles else None)
            for t in event.targets
        )
        if relay.current() is None:
            outbox.notify_publishers()
        transaction.on_commit(partial(_after_commit, stored.pk), robust=True)
    return stored


def _after_commit(event_id: int) -> None:
    """Wake this process's publisher (thread-safe, microseconds); never raises."""
    try:
        relay.wake()
    except Exception:  # the request must succeed; the row stays for the publishers' poll
        logger.exception("waking the publisher for event %s failed; it polls", event_id)
