"""Every `NOTIFICATIONS_*` setting, declared once with its default (like DRF's `api_settings`).

Read a value as an attribute: ``notification_settings.WS_RATE``. Each read resolves, in order,
the Django setting ``NOTIFICATIONS_WS_RATE`` (so ``override_settings`` and a settings module
win), then the environment variable of the same name (where an operator sets it), then the
default declared here. Values are converted to the declared type; a bad value is an error at
start-up (notifications/checks.py), not a surprise on the first socket.

docs/deployment.md lists every setting with its default; a test keeps the two in step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

PREFIX = "NOTIFICATIONS_"


@dataclass(frozen=True)
class Setting:
    """One knob: its default, how its text (environment) is converted, and the lowest value."""

    default: Any
    kind: Callable[[Any], Any] = float
    minimum: float | None = 0.0
    doc: str = ""


#: name (without the NOTIFICATIONS_ prefix) → declaration. The one list of every knob.
SETTINGS: dict[str, Setting] = {
    # sockets (/ws/notifications/ and the Pusher endpoint)
    "WS_RATE": Setting(20.0, doc="client frames per second a socket may send, sustained"),
    "WS_BURST": Setting(40.0, doc="client frames a socket may send at once"),
    "WS_MAX_FRAME_BYTES": Setting(4096, int, 1, doc="largest client frame on /ws/notifications/"),
    "WS_RECHECK_SECONDS": Setting(
        60.0, minimum=0.001, doc="how often a socket re-reads its account and session"
    ),
    # outbox publisher
    "POLL_SECONDS": Setting(0.2, minimum=0.001, doc="publisher's poll of the outbox"),
    "SEND_TIMEOUT_SECONDS": Setting(2.0, minimum=0.001, doc="one layer send's time limit"),
    "LEASE_SECONDS": Setting(10.0, minimum=0.001, doc="how long a claimed event is reserved"),
    "SINGLE_CLAIMER": Setting(
        0, int, 0, doc="1: on PostgreSQL one process's publisher claims, the others NOTIFY it"
    ),
    "SWITCH_INTERVAL_SECONDS": Setting(
        0.001,
        doc="Python's thread switch interval in a process that runs a publisher (0: leave "
        "Python's 5 ms): its threads wait less for the GIL behind request threads and the fan-out",
    ),
    "PUBLISH_MAX_AGE_SECONDS": Setting(
        900.0, doc="unpublished events older than this are not pushed live (stay stored)"
    ),
    "RETRY_MAX_SECONDS": Setting(2.0, doc="longest back-off between failed sends"),
    # replay (resume)
    "REPLAY_LIMIT": Setting(500, int, 1, doc="events at most per resume; more gets resync"),
    "REPLAY_MAX_AGE_SECONDS": Setting(
        86400.0, doc="a last_id older than this gets resync (default one day)"
    ),
    "REPLAY_SOCKET_FRAMES": Setting(
        2000, int, 1, doc="events one socket may have replayed per replay window"
    ),
    "REPLAY_USER_FRAMES": Setting(
        5000,
        int,
        1,
        doc="events one person's sockets may have replayed per window (all processes with Redis)",
    ),
    "REPLAY_WINDOW_SECONDS": Setting(
        60.0, minimum=0.001, doc="the window of the replay budgets (they refill over it)"
    ),
    "REPLAY_CLOCK_MARGIN_SECONDS": Setting(1.0, doc="slack on the database clock in a replay"),
    "GAP_RECENT_EVENTS": Setting(
        65536,
        int,
        1,
        doc="event ids a process keeps so a replay after a lost Redis subscription skips what "
        "its sockets had (~70 bytes each)",
    ),
    # presence
    "PRESENCE_TTL": Setting(
        30.0, minimum=0.001, doc="seconds a presence entry lives without a heartbeat"
    ),
    "PRESENCE_GRACE": Setting(3.0, doc="seconds a closed page's presence entry lingers"),
    "PRESENCE_PREFIX": Setting(
        "", str, None, doc="Redis key prefix of presence (empty: CHANNELS_PREFIX)"
    ),
    "PRESENCE_BACKEND": Setting(
        "", str, None, doc="presence store class path (empty: Redis with REDIS_URL, else memory)"
    ),
}


class NotificationSettings:
    """Attribute access to the declared settings; resolved on every read (cheap)."""

    def __getattr__(self, name: str) -> Any:
        try:
            declared = SETTINGS[name]
        except KeyError:
            raise AttributeError(f"No setting {PREFIX}{name} is declared.") from None
        return convert(name, raw_value(name), declared)

    def __dir__(self) -> list[str]:
        return list(SETTINGS)


def raw_value(name: str) -> Any:
    """The unconverted value: Django setting, else environment, else the default."""
    full = PREFIX + name
    value = getattr(settings, full, None)
    if value is None:
        value = os.environ.get(full)
    if value is None or (value == "" and SETTINGS[name].kind is not str):
        return SETTINGS[name].default
    return value


def convert(name: str, value: Any, declared: Setting) -> Any:
    """The value in the declared type; ValueError naming the setting when it does not fit."""
    try:
        converted = declared.kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{PREFIX}{name}={value!r} is not a {declared.kind.__name__}.") from None
    if isinstance(converted, float) and not math.isfinite(converted):  # nan passes any minimum
        raise ValueError(f"{PREFIX}{name}={value!r} is not a finite number.")
    if declared.minimum is not None and converted < declared.minimum:
        raise ValueError(f"{PREFIX}{name}={value!r} is below its minimum {declared.minimum}.")
    return converted


def env_name(name: str) -> str:
    return PREFIX + name


notification_settings = NotificationSettings()
