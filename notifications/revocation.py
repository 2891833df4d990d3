"""Close the sockets of whoever loses access: logout, suspension, deletion, tenant suspension.

Receivers turn signals into a `notify.close` channel-layer message to the group that holds exactly
the affected sockets, sent after the transaction commits (a rolled-back suspension closes
nothing). A layer failure is logged, never raised into the user's request; the consumer's slow
re-check timer closes the socket anyway in that case.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.dispatch import receiver

from accounts import signals as account_signals
from tenants import signals as tenant_signals

from .realtime.groups import session_group, tenant_group, user_group
from .realtime.protocol import CLOSE_FORBIDDEN, CLOSE_RECONNECT, close_message
from .realtime.send import group_send


def close_group(group: str, *, code: int = CLOSE_FORBIDDEN, reason: str = "") -> None:
    """Close every socket in `group`, once the current transaction (if any) commits."""
    transaction.on_commit(partial(group_send, group, close_message(code, reason)), robust=True)


@receiver(user_logged_out, dispatch_uid="notifications.revocation.logged_out")
def on_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        close_group(session_group(key), reason="Signed out.")


@receiver(account_signals.account_suspended, dispatch_uid="notifications.revocation.suspended")
def on_account_suspended(sender: Any, user: Any, **kwargs: Any) -> None:
    close_group(user_group(user.pk), reason="Account suspended.")


@receiver(account_signals.user_deleted, dispatch_uid="notifications.revocation.deleted")
def on_user_deleted(sender: Any, user_id: int, **kwargs: Any) -> None:
    close_group(user_group(user_id), reason="Account deleted.")


@receiver(account_signals.user_updated, dispatch_uid="notifications.revocation.role_changed")
def on_user_updated(sender: Any, user: Any, changed: list[str], **kwargs: Any) -> None:
    """A new role changes which events the user may see: reconnect to get the new rights."""
    if "role" in changed:
        close_group(user_group(user.pk), code=CLOSE_RECONNECT, reason="Role changed; reconnect.")


@receiver(tenant_signals.tenant_suspended, dispatch_uid="notifications.revocation.tenant")
def on_tenant_suspended(sender: Any, tenant: Any, **kwargs: Any) -> None:
    close_group(tenant_group(tenant.pk), reason="Organisation suspended.")
