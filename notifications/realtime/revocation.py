"""Close the sockets of whoever loses access: logout, suspension, deletion, tenant suspension.

A `notify.close` channel-layer message goes to the group that holds exactly the affected
sockets, after the transaction commits (a rolled-back suspension closes nothing). A layer failure
is logged, never raised into the user's request; the consumer's slow re-check timer closes the
socket anyway in that case. Which domain signals lead here: notifications/events/receivers.py.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction

from notifications.realtime.groups import session_group, tenant_group, user_group
from notifications.realtime.protocol import CLOSE_FORBIDDEN, CLOSE_RECONNECT, close_message
from notifications.realtime.send import group_send


def close_group(group: str, *, code: int = CLOSE_FORBIDDEN, reason: str = "") -> None:
    """Close every socket in `group`, once the current transaction (if any) commits."""
    transaction.on_commit(partial(group_send, group, close_message(code, reason)), robust=True)


def close_session(session_key: str) -> None:
    """One login session signed out: only that session's sockets."""
    close_group(session_group(session_key), reason="Signed out.")


def close_user(user_id: int, reason: str) -> None:
    close_group(user_group(user_id), reason=reason)


def reconnect_user(user_id: int, reason: str) -> None:
    """The account's rights changed: its sockets reconnect to get the new ones (4409)."""
    close_group(user_group(user_id), code=CLOSE_RECONNECT, reason=reason)


def close_tenant(tenant_id: int, reason: str) -> None:
    close_group(tenant_group(tenant_id), reason=reason)
