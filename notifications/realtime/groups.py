"""Every channel-layer group name, built and parsed here and nowhere else.

Public groups (an event's audience, what a socket may join): ``tenant.<id>``, ``user.<id>``,
``system.admin``, and ``payment.<id>`` (joined only by the portal socket holding that payment's
token). Internal groups: ``session.<hash>`` (one login session's sockets, closed on
logout), ``presence.<scope>`` (changes of a presence scope), ``presence.system`` (per-tenant
online counts), ``pusher.<socket id>`` (grants for one Pusher socket) and ``pusher-ch.<channel>``
(one Pusher channel's client events). Presence scopes are ``tenant.<id>`` (the same string as
the tenant's group) and ``record.<kind>.<id>``.
"""

from __future__ import annotations

import hashlib
import re

SYSTEM_ADMIN_GROUP = "system.admin"
PRESENCE_SYSTEM_GROUP = "presence.system"  # per-tenant online counts, for system admins

#: a Pusher channel name → the public group it is (private-tenant.3 / presence-tenant.3 → tenant.3)
# ASCII digits and \Z: "private-tenant.٥" or a trailing "\n" is no channel name (a 400)
PUSHER_CHANNEL_RE = re.compile(
    r"\A(?:private-(tenant\.[0-9]{1,18}|user\.[0-9]{1,18}|system\.admin)"
    r"|presence-(tenant\.[0-9]{1,18}))\Z"
)
_TENANT_RE = re.compile(r"\Atenant\.([0-9]{1,18})\Z")
_USER_RE = re.compile(r"\Auser\.([0-9]{1,18})\Z")
_RECORD_RE = re.compile(r"\Arecord\.([a-z_]{1,30})\.([0-9]{1,18})\Z")


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def payment_group(payment_id: int) -> str:
    """One payment's group: only the portal socket opened with that payment's token joins it."""
    return f"payment.{payment_id}"


def session_group(session_key: str) -> str:
    """Internal group of one login session's sockets (closed together on logout)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:32]


def is_session_group(name: object) -> bool:
    return isinstance(name, str) and name.startswith("session.")


def tenant_of(name: object) -> int | None:
    """The tenant id of a ``tenant.<id>`` group or scope, else None."""
    found = _TENANT_RE.fullmatch(name) if isinstance(name, str) else None
    return int(found.group(1)) if found else None


def user_of(name: object) -> int | None:
    """The user id of a ``user.<id>`` group, else None."""
    found = _USER_RE.fullmatch(name) if isinstance(name, str) else None
    return int(found.group(1)) if found else None


# --- presence ---------------------------------------------------------------------------------


def tenant_scope(tenant_id: int) -> str:
    """The presence scope of a tenant: every signed-in socket of it."""
    return tenant_group(tenant_id)


def record_scope(kind: str, pk: int) -> str:
    """The presence scope of one record's edit page (``record.user.42``)."""
    return f"record.{kind}.{pk}"


def parse_record(record: object) -> tuple[str, int] | None:
    """("user", 42) for the record name "user.42" a page announces, else None."""
    found = _RECORD_RE.fullmatch(f"record.{record}") if isinstance(record, str) else None
    return (found.group(1), int(found.group(2))) if found else None


def record_name(scope: str) -> str:
    """The record a ``record.<kind>.<id>`` scope is about, as pages name it ("user.42")."""
    return scope.removeprefix("record.")


def presence_group(scope: str) -> str:
    """The layer group where changes of `scope` are announced."""
    return f"presence.{scope}"


# --- Pusher -----------------------------------------------------------------------------------


def pusher_channel_group(channel: object) -> str | None:
    """The public group of a Pusher channel name, else None."""
    if not isinstance(channel, str):
        return None
    found = PUSHER_CHANNEL_RE.match(channel)
    return (found.group(1) or found.group(2)) if found else None


def is_pusher_presence(channel: str) -> bool:
    return channel.startswith("presence-")


def pusher_client_group(channel: str) -> str:
    """Pusher-only layer group of one channel's client events (never shared with other sockets)."""
    return f"pusher-ch.{channel}"


def pusher_grant_group(socket_id: str) -> str:
    """The group of one Pusher socket, where /broadcasting/auth tells it whose grant it holds."""
    return f"pusher.{socket_id}"
