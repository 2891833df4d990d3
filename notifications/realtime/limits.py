"""Flood limits of the socket endpoints: client frames counted on arrival, replay budgets.

`ArrivalLimit` (a consumer mixin, on the lean receive loop of realtime.mailbox) takes a token of
the socket's frame bucket as each frame comes off the server's queue, not when the consumer gets
round to handling it: a client that sends 1,000 frames at once is closed (4429) after the first
NOTIFICATIONS_WS_BURST, however slow the frames before were to handle (a resume reads the
database).

`ReplayBudget` limits the replay work a socket, and a person across all their sockets, may
cause: frames replayed per window (NOTIFICATIONS_REPLAY_SOCKET_FRAMES,
NOTIFICATIONS_REPLAY_USER_FRAMES per NOTIFICATIONS_REPLAY_WINDOW_SECONDS). The person's budget
is shared by every server process through Redis when REDIS_URL is set (`RedisUserBudgets`: one
atomic script on Redis's clock), else kept in this process; while Redis is unreachable a process
falls back to its own (a resume is never refused because Redis is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

from django.conf import settings

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


# KEYS[1]: the person's bucket (hash level/ts). ARGV: capacity, window, units to charge (0: ask).
# Refilled on Redis's own clock, so processes on machines whose clocks differ agree.
# Returns the level after the charge, as a string (Lua numbers become integers otherwise).
_CHARGE = """
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local units = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'level', 'ts')
local level = tonumber(v[1]) or capacity
local ts = tonumber(v[2]) or now
level = math.min(capacity, level + math.max(0, now - ts) * capacity / window)
if units > 0 then
  level = level - units
  redis.call('HSET', KEYS[1], 'level', tostring(level), 'ts', tostring(now))
  redis.call('EXPIRE', KEYS[1], math.ceil(window * 2) + 1)
end
return tostring(level)
"""


class RedisUserBudgets:
    """Every person's replay budget in Redis, shared by all server processes (REDIS_URL).

    Keys `<CHANNELS_PREFIX>:replay:user:<id>` expire once full again. Calls block (a sync
    client with short timeouts); the consumer makes them in a worker thread.
    """

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.prefix = f"{prefix}:replay:user:"
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        self._charge = self._client.register_script(_CHARGE)

    def level(self, user_id: int, units: float = 0) -> float:
        """The person's level after charging `units` (0: only read it)."""
        window = max(conf.REPLAY_WINDOW_SECONDS, 1e-3)
        args = [conf.REPLAY_USER_FRAMES, repr(float(window)), repr(float(units))]
        return float(self._charge(keys=[f"{self.prefix}{user_id}"], args=args))

    def reset(self) -> None:
        keys = list(self._client.scan_iter(match=self.prefix + "*"))
        if keys:
            self._client.delete(*keys)


_shared: RedisUserBudgets | None = None
_shared_url: str | None = None
_shared_lock = threading.Lock()


def shared_budgets() -> RedisUserBudgets | None:
    """The Redis budgets when REDIS_URL is set (one client per process), else None."""
    global _shared, _shared_url
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    with _shared_lock:
        if _shared is None or _shared_url != url:
            prefix = getattr(settings, "CHANNELS_PREFIX", "hotspot")
            _shared, _shared_url = RedisUserBudgets(url, prefix), url
        return _shared


class ReplayBudget:
    """One socket's replay budget, and its person's (shared through Redis when configured)."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.socket = Budget(conf.REPLAY_SOCKET_FRAMES)
        self.user = user_budget(user_id)  # the fallback while Redis is unreachable

    async def _user_level(self, units: float) -> float | None:
        """The shared level after charging `units`; None without Redis or when it fails."""
        shared = shared_budgets()
        if shared is None:
            return None
        try:
            return await asyncio.to_thread(shared.level, self.user_id, units)
        except Exception:
            logger.warning("shared replay budget unavailable; using this process's", exc_info=True)
            return None

    async def retry_after(self) -> float:
        """0 when a resume may run now; else the seconds until both budgets allow one."""
        window = max(conf.REPLAY_WINDOW_SECONDS, 1e-3)
        user_capacity = float(conf.REPLAY_USER_FRAMES)
        waits = [self.socket.wait(float(conf.REPLAY_SOCKET_FRAMES), window)]
        level = await self._user_level(0)
        if level is None:
            waits.append(self.user.wait(user_capacity, window))
        else:
            waits.append(max(0.0, (1 - level) * window / user_capacity))
        return max(waits)

    async def charge(self, frames: int) -> None:
        """Replayed `frames` (a resume costs at least one: its query)."""
        window = conf.REPLAY_WINDOW_SECONDS
        units = max(1, frames)
        self.socket.charge(units, float(conf.REPLAY_SOCKET_FRAMES), window)
        if await self._user_level(units) is None:
            self.user.charge(units, float(conf.REPLAY_USER_FRAMES), window)


def reset_user_budgets() -> None:
    """Tests: forget every person's budget (this process's, and the shared ones in Redis)."""
    _users.clear()
    shared = shared_budgets()
    if shared is not None:
        with contextlib.suppress(Exception):
            shared.reset()
