"""The wire protocol of every socket endpoint: close codes, frames, limits and socket ids.

docs/protocol.md documents it for clients; this module is its one definition on the server.
The `event` frame is built here (by `event_frame`) whether it carries a stored event, a
replayed one or the unstored `NotificationRead`; consumers forward its text as is.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from ..conf import notification_settings as conf

# Close codes (docs/protocol.md).
CLOSE_UNAUTHENTICATED = 4401  # no/invalid/expired credentials: sign in (or refresh) and reconnect
CLOSE_FORBIDDEN = 4403  # blocked, logged out, suspended, deleted, tenant suspended: do not retry
CLOSE_TOO_SLOW = 4408  # fell too far behind (the layer's queue overflowed): reconnect and resume
CLOSE_RECONNECT = 4409  # the account changed (role, password): reconnect to get the new rights
CLOSE_RATE_LIMITED = 4429  # the client sent frames faster than allowed

#: the channel-layer message a socket gets when its queue overflows
TOO_SLOW_MESSAGE = {"type": "notify.close", "code": CLOSE_TOO_SLOW, "reason": "too slow"}
# What the channel layer tells each local channel in a group once its Redis subscription is back
# after a gap (events published meanwhile never reached this process): replay from the store.
RESUBSCRIBED_MESSAGE = {"type": "notify.resubscribed"}

# Limits of client frames on /ws/notifications/ (the rates and size are settings, conf.py).
MAX_CHANNEL_LENGTH = 200
#: a close reason is limited to 123 bytes by RFC 6455
MAX_CLOSE_REASON_BYTES = 123

#: Pusher-style socket id, "<int>.<int>" (e.g. "123456.7891011"); anything else is ignored.
# [0-9], not \d (which takes any Unicode digit), and \Z, not $ (which allows a final "\n")
SOCKET_ID_RE = re.compile(r"\A[0-9]{1,20}\.[0-9]{1,20}\Z")


class TooDeep(ValueError):
    """Client JSON nested deeper than the parser's recursion limit (a 2,000-deep array)."""


def loads(text: str | bytes) -> Any:
    """`json.loads` for anything a client sends: ValueError (or TooDeep) for what is not JSON.

    CPython's parser raises RecursionError past ~1,000 levels of nesting; an uncaught one drops
    the socket with no close code and logs a traceback per frame. Every endpoint parses client
    input here, so such a frame gets a clear error like any other malformed one.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep("JSON nested too deeply.") from None


_random_pool = bytearray()
_random_lock = threading.Lock()
os.register_at_fork(after_in_child=_random_pool.clear)  # a forked worker never shares bytes


def random_bytes(n: int) -> bytes:
    """`n` bytes from the OS's CSPRNG, read 4 KiB at a time.

    One `os.urandom` per socket (two for the socket id, one for the channel name) released and
    re-took the GIL on the event loop at every handshake: behind a database thread that was a
    wait of up to the GIL's switch interval each (issue 16). The bytes are as unguessable.
    """
    with _random_lock:  # request threads take ids too (async_to_sync): never the same bytes
        if len(_random_pool) < n:
            _random_pool.extend(os.urandom(4096))
        taken = bytes(_random_pool[:n])
        del _random_pool[:n]
    return taken


def new_socket_id() -> str:
    """A socket id of the Pusher form "<int>.<int>" (unguessable; used for toOthers)."""
    raw = random_bytes(16)
    # 64 random bits per part: the modulo's bias (< 2**-34) is negligible
    first = int.from_bytes(raw[:8], "big") % 10**9 + 1
    second = int.from_bytes(raw[8:], "big") % 10**9 + 1
    return f"{first}.{second}"


def clean_socket_id(value: str | None) -> str | None:
    """The socket id if well-formed, else None (a bad header must not exclude anyone)."""
    if not value:
        return None
    value = value.strip()
    return value if SOCKET_ID_RE.match(value) else None


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with milliseconds and a Z, the one timestamp format on the wire."""
    if value is None:
        return None
    value = value.astimezone(UTC) if timezone.is_aware(value) else value
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(frame: dict[str, Any]) -> str:
    """A frame as compact JSON text."""
    return json.dumps(frame, separators=(",", ":"))


def event_frame(
    *,
    id: int | None,  # noqa: A002 (the frame's field)
    event: str,
    category: str,
    level: str,
    title: str,
    message: str,
    channel: str,
    data: dict[str, Any],
    occurred_at: datetime | None,
    translations: dict[str, dict[str, str]] | None = None,
) -> str:
    """The `event` frame, serialized once (every socket of the group gets this text).

    `title` / `message` are in the default language; `titles` / `messages` hold the other
    languages' ({"sw": ...}), so one frame serves every user and the page shows its own
    language (`<html lang>`) with no work per socket.
    """
    translations = translations or {}
    return dumps(
        {
            "type": "event",
            "id": id,
            "event": event,
            "category": category,
            "level": level,
            "title": title,
            "message": message,
            "titles": {code: text["title"] for code, text in translations.items()},
            "messages": {code: text["message"] for code, text in translations.items()},
            "channel": channel,
            "data": data,
            "occurred_at": iso(occurred_at),
        }
    )


def event_message(
    text: str, *, id: int | None = None, roles: list[str] | None = None, exclude: str | None = None
) -> dict[str, Any]:  # noqa: A002
    """The channel-layer message that carries an event frame to a group's sockets."""
    return {"type": "notify.event", "id": id, "text": text, "roles": roles, "exclude": exclude}


def close_message(code: int, reason: str = "") -> dict[str, Any]:
    """The channel-layer message that closes every socket of a group."""
    return {"type": "notify.close", "code": code, "reason": reason}


def now_iso() -> str | None:
    return iso(timezone.now())


class TokenBucket:
    """`burst` at once, then `rate` per second: the frame limits of every socket endpoint.

    The rates are read on each take (settings), so a test or an operator override applies to
    open sockets too.
    """

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: Any, burst: Any) -> None:
        self.rate = rate if callable(rate) else (lambda: rate)
        self.burst = burst if callable(burst) else (lambda: burst)
        self.tokens = float(self.burst())
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.burst()), self.tokens + (now - self.last) * self.rate())
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def frame_bucket() -> TokenBucket:
    """The client-frame limit of a socket (NOTIFICATIONS_WS_RATE / NOTIFICATIONS_WS_BURST)."""
    return TokenBucket(lambda: conf.WS_RATE, lambda: conf.WS_BURST)
