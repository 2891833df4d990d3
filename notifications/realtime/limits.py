"""Flood limits of the socket endpoints: client frames counted on arrival, replay budgets.

`ArrivalLimit` (a consumer mixin, on the lean receive loop of realtime.mailbox) takes a token of
the socket's frame bucket as each frame comes off the server's queue, not when the consumer gets
round to handling it: a client that sends 1,000 frames at once is closed (4429) after the first
NOTIFICATIONS_WS_BURST, however slow the frames before were to handle (a resume reads the
database).

`ReplayBudget` limits the replay work a socket, and a person across their sockets in this
process, may cause: frames replayed per window (NOTIFICATIONS_REPLAY_SOCKET_FRAMES,
NOTIFICATIONS_REPLAY_USER_FRAMES per NOTIFICATIONS_REPLAY_WINDOW_SECONDS).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from notifications.conf import notification_settings as conf
from notifications.realtime.mailbox import ConsumerLoop
from notifications.realtime.protocol import CLOSE_RATE_LIMITED, frame_bucket

logger = logging.getLogger(__name__)


class ArrivalLimit(ConsumerLoop):
    """Consumer mixin: count client frames on arrival; `_flooded()` closes the socket at once.

    The consumer loop's reader (realtime.mailbox) hands each server message here as it arrives,
    before the consumer gets round to it, and this takes a token per `websocket.receive`. Once
    the bucket is empty the consumer's `_flooded()` runs right away (frames after that are not
    even queued: the consumer is closed).
    """

    _bucket: Any = None
    _flood_closed = False

    async def _on_arrival(self, message: dict) -> bool:
        if message.get("type") != "websocket.receive":
            return True
        if self._flood_closed:
            return False
        bucket = self._bucket
        if bucket is None:
            bucket = self._bucket = frame_bucket()
        if not bucket.take():
            self._flood_closed = True
            await self._close_flooded(self.base_send)  # type: ignore[attr-defined]
            return False
        return True

    async def _close_flooded(self, send: Any) -> None:
        try:
            await self._flooded()
        except Exception:  # e.g. still in connect(): close with the code anyway
            logger.debug("flood close fell back to a bare close", exc_info=True)
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": CLOSE_RATE_LIMITED})

    async def _flooded(self) -> None:
        raise NotImplementedError


class Budget:
    """`capacity` units at once, refilled over `window` seconds; a charge may go into debt."""

    __slots__ = ("level", "last")

    def __init__(self, capacity: float) -> None:
        self.level = float(capacity)
        self.last = time.monotonic()

    def _refill(self, capacity: float, window: float) -> None:
        now = time.monotonic()
        self.level = min(capacity, self.level + (now - self.last) * capacity / max(window, 1e-3))
        self.last = now

    def available(self, capacity: float, window: float) -> float:
        self._refill(capacity, window)
        return self.level

    def charge(self, units: float, capacity: float, window: float) -> None:
        self._refill(capacity, window)
        self.level -= units

    def wait(self, capacity: float, window: float) -> float:
        """Seconds until one unit is available."""
        missing = 1 - self.available(capacity, window)
        return max(0.0, missing * max(window, 1e-3) / capacity)


_users: dict[int, Budget] = {}
_MAX_USERS = 10_000


def user_budget(user_id: int) -> Budget:
    """The person's replay budget in this process (shared by all their sockets here)."""
    budget = _users.get(user_id)
    if budget is None:
        if len(_users) >= _MAX_USERS:  # forget the people whose budget is full again
            capacity, window = conf.REPLAY_USER_FRAMES, conf.REPLAY_WINDOW_SECONDS
            for key in [k for k, b in _users.items() if b.available(capacity, window) >= capacity]:
                del _users[key]
        budget = _users[user_id] = Budget(conf.REPLAY_USER_FRAMES)
    return budget


class ReplayBudget:
    """One socket's replay budget, and its person's."""

    def __init__(self, user_id: int) -> None:
        self.socket = Budget(conf.REPLAY_SOCKET_FRAMES)
        self.user = user_budget(user_id)

    def _pairs(self) -> list[tuple[Budget, float]]:
        return [
            (self.socket, float(conf.REPLAY_SOCKET_FRAMES)),
            (self.user, float(conf.REPLAY_USER_FRAMES)),
        ]

    def retry_after(self) -> float:
        """0 when a resume may run now; else the seconds until both budgets allow one."""
        window = conf.REPLAY_WINDOW_SECONDS
        return max(budget.wait(capacity, window) for budget, capacity in self._pairs())

    def charge(self, frames: int) -> None:
        """Replayed `frames` (a resume costs at least one: its query)."""
        window = conf.REPLAY_WINDOW_SECONDS
        for budget, capacity in self._pairs():
            budget.charge(max(1, frames), capacity, window)


def reset_user_budgets() -> None:
    """Tests: forget every person's budget."""
    _users.clear()
