"""Who is online: presence entries kept alive by heartbeats, in Redis or in this process.

A *scope* is what people are present in: ``tenant.<id>`` (every signed-in socket of that tenant,
on /ws/notifications/ or a Pusher ``presence-tenant.<id>`` subscription) or ``record.user.<id>``
(admins with that user's edit page open). An *entry* is one connection in a scope; a *member* is
a person, online while any of their entries lives, so a person with three tabs counts once.

Entries expire: each server process refreshes its own every ``ttl / 3`` seconds (one task per
process, not one per socket). A process that is killed stops refreshing, and its entries lapse
after ``ttl``; the next sweep by any process (each sweeps the scopes it has entries in, and all
scopes when a system admin watches the per-tenant counts) removes them and announces the member
as gone. So no ghost stays online longer than ``ttl`` plus one heartbeat.

Transitions (a person's first entry → ``added``, their last one gone → ``removed``) are decided
by the store atomically: a Lua script in Redis, a lock in memory. Two processes therefore never
both announce the same change, and changes reach watchers through the channel layer group
``presence.<scope>`` (and per-tenant counts through ``presence.system``).

Backends: ``RedisPresenceStore`` when ``REDIS_URL`` is set (shared by every server process);
``MemoryPresenceStore`` otherwise (the embedded default runs one server process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from .conf import notification_settings as conf
from .realtime import access
from .realtime.groups import (
    PRESENCE_SYSTEM_GROUP,
    presence_group,
    tenant_of,
    tenant_scope,
)

logger = logging.getLogger(__name__)


def presence_ttl() -> float:
    """Seconds an entry lives without a heartbeat."""
    return conf.PRESENCE_TTL


def presence_grace() -> float:
    """Seconds a closed page's entry lingers, so moving to the next page is not leaving."""
    return conf.PRESENCE_GRACE


def member_info(user: Any) -> dict[str, Any]:
    """What others see of an online person (ids and strings only)."""
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return {
        "id": user.pk,
        "username": user.username,
        "name": name or user.username,
        "role": getattr(user, "role", ""),
    }


def record_access(user: Any, record: Any) -> str | None:
    """The scope of `record` ("user.42") if `user` may edit it, else None (sync: reads the DB)."""
    return access.policy.record_scope(user, record)


@dataclass
class Change:
    """What one store call changed in a scope."""

    scope: str
    added: list[dict[str, Any]] = field(default_factory=list)  # member infos
    removed: list[int] = field(default_factory=list)  # person ids
    online: int = 0  # people online in the scope afterwards

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


# --- stores -----------------------------------------------------------------------------------


class MemoryPresenceStore:
    """Process-local store (the embedded default): the same semantics as Redis, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, _MemoryScope] = {}

    @classmethod
    def from_settings(cls) -> MemoryPresenceStore:
        return cls()

    def _sweep(self, scope: str, now: float) -> list[int]:
        state = self._scopes.get(scope)
        if state is None:
            return []
        gone = []
        for conn in [c for c, (_, until) in state.entries.items() if until <= now]:
            person = state.drop(conn)
            if person is not None:
                gone.append(person)
        return sorted(gone)

    def _finish(self, scope: str, change: Change) -> Change:
        state = self._scopes.get(scope)
        if state is not None and not state.entries:
            del self._scopes[scope]
            state = None
        change.online = len(state.counts) if state else 0
        return change

    def join(self, scope: str, entries: list[tuple[str, dict[str, Any]]]) -> Change:
        now = time.time()
        with self._lock:
            change = Change(scope, removed=self._sweep(scope, now))
            state = self._scopes.setdefault(scope, _MemoryScope())
            for conn, info in entries:
                person = int(info["id"])
                if conn not in state.entries:
                    state.counts[person] = state.counts.get(person, 0) + 1
                    if state.counts[person] == 1:
                        change.added.append(info)
                state.entries[conn] = (person, now + presence_ttl())
                state.info[person] = info
            return self._finish(scope, change)

    def leave(self, scope: str, conns: Iterable[str]) -> Change:
        now = time.time()
        with self._lock:
            change = Change(scope, removed=self._sweep(scope, now))
            state = self._scopes.get(scope)
            for conn in conns if state else ():
                person = state.drop(conn)
                if person is not None:
                    change.removed.append(person)
            return self._finish(scope, change)

    def sweep(self, scope: str) -> Change:
        return self.leave(scope, [])

    def linger(self, scope: str, conn: str, seconds: float) -> None:
        """Let an entry lapse in `seconds` (instead of its TTL); nothing if it is gone."""
        with self._lock:
            state = self._scopes.get(scope)
            if state is not None and conn in state.entries:
                state.entries[conn] = (state.entries[conn][0], time.time() + seconds)

    def members(self, scope: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._scopes.get(scope)
            live = state.live(time.time()) if state else set()
            return sorted((state.info[p] for p in live if p in state.info), key=_member_order)

    def counts(self, scopes: Iterable[str]) -> dict[str, int]:
        now = time.time()
        with self._lock:
            return {
                scope: len(self._scopes[scope].live(now)) if scope in self._scopes else 0
                for scope in scopes
            }

    def scopes(self) -> list[str]:
        with self._lock:
            return sorted(self._scopes)

    def clear(self) -> None:
        with self._lock:
            self._scopes.clear()


class _MemoryScope:
    """One scope's entries (conn → person, expiry), live entries per person, and infos."""

    __slots__ = ("entries", "counts", "info")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, float]] = {}
        self.counts: dict[int, int] = {}
        self.info: dict[int, dict[str, Any]] = {}

    def drop(self, conn: str) -> int | None:
        """Remove an entry; the person if it was their last one."""
        found = self.entries.pop(conn, None)
        if found is None:
            return None
        person = found[0]
        self.counts[person] -= 1
        if self.counts[person] > 0:
            return None
        del self.counts[person]
        self.info.pop(person, None)
        return person

    def live(self, now: float) -> set[int]:
        return {person for person, until in self.entries.values() if until > now}


def _member_order(info: dict[str, Any]) -> tuple[str, int]:
    return (str(info.get("name", "")).lower(), int(info.get("id", 0)))


# Redis layout per scope S (under the prefix): `S:z` sorted set conn → expiry (unix seconds),
# `S:who` hash conn → person, `S:n` hash person → live entries, `S:info` hash person → JSON.
# `scopes` is the set of scopes with entries (what a system-wide sweep walks).
_SWEEP = """
local gone = {}
-- remove one entry; a person whose last entry it was is gone
local function drop(conn)
  if redis.call('ZREM', KEYS[1], conn) == 0 then return end
  local person = redis.call('HGET', KEYS[2], conn)
  redis.call('HDEL', KEYS[2], conn)
  if person and redis.call('HINCRBY', KEYS[3], person, -1) <= 0 then
    redis.call('HDEL', KEYS[3], person)
    redis.call('HDEL', KEYS[4], person)
    table.insert(gone, person)
  end
end
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do drop(conn) end
"""

_FINISH = """
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  redis.call('SREM', KEYS[5], ARGV[3])
else
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
  redis.call('SADD', KEYS[5], ARGV[3])
end
return {cjson.encode(added), cjson.encode(gone), redis.call('HLEN', KEYS[3])}
"""

# ARGV: now, key ttl, scope, expiry, then (conn, person, info json) triples.
_JOIN = (
    _SWEEP
    + """
local added = {}
for i = 5, #ARGV, 3 do
  local conn, person = ARGV[i], ARGV[i + 1]
  if redis.call('ZADD', KEYS[1], ARGV[4], conn) == 1 then
    redis.call('HSET', KEYS[2], conn, person)
    if redis.call('HINCRBY', KEYS[3], person, 1) == 1 then table.insert(added, ARGV[i + 2]) end
  end
  redis.call('HSET', KEYS[4], person, ARGV[i + 2])
end
"""
    + _FINISH
)

# ARGV: now, key ttl, scope, then conns.
_LEAVE = (
    _SWEEP
    + """
local added = {}
for i = 4, #ARGV do drop(ARGV[i]) end
"""
    + _FINISH
)

# Read-only: the live members' infos (entries not yet expired), without sweeping.
_MEMBERS = """
local conns = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local seen, out = {}, {}
for _, conn in ipairs(conns) do
  local person = redis.call('HGET', KEYS[2], conn)
  if person and not seen[person] then
    seen[person] = true
    local info = redis.call('HGET', KEYS[4], person)
    if info then table.insert(out, info) end
  end
end
return out
"""


class RedisPresenceStore:
    """Shared store for several server processes (REDIS_URL): atomic Lua scripts per scope."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.url = url
        self.prefix = f"{prefix}:presence:"
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._join = self._client.register_script(_JOIN)
        self._leave = self._client.register_script(_LEAVE)
        self._members = self._client.register_script(_MEMBERS)

    @classmethod
    def from_settings(cls) -> RedisPresenceStore:
        """REDIS_URL, keys under NOTIFICATIONS_PRESENCE_PREFIX (else CHANNELS_PREFIX)."""
        prefix = conf.PRESENCE_PREFIX or getattr(settings, "CHANNELS_PREFIX", "hotspot")
        return cls(settings.REDIS_URL, prefix)

    def _keys(self, scope: str) -> list[str]:
        base = self.prefix + scope
        return [f"{base}:z", f"{base}:who", f"{base}:n", f"{base}:info", self.prefix + "scopes"]

    def _args(self, scope: str) -> list[Any]:
        ttl = presence_ttl()
        return [repr(time.time()), max(1, int(ttl * 4)), scope]

    @staticmethod
    def _change(scope: str, result: list[Any]) -> Change:
        added, gone, online = result
        return Change(
            scope,
            added=[json.loads(info) for info in json.loads(added or b"[]") or []],
            removed=sorted(int(p) for p in json.loads(gone or b"[]") or []),
            online=int(online),
        )

    def join(self, scope: str, entries: list[tuple[str, dict[str, Any]]]) -> Change:
        args = [*self._args(scope), repr(time.time() + presence_ttl())]
        for conn, info in entries:
            args += [conn, str(int(info["id"])), json.dumps(info, separators=(",", ":"))]
        return self._change(scope, self._join(keys=self._keys(scope), args=args))

    def leave(self, scope: str, conns: Iterable[str]) -> Change:
        args = [*self._args(scope), *conns]
        return self._change(scope, self._leave(keys=self._keys(scope), args=args))

    def sweep(self, scope: str) -> Change:
        return self.leave(scope, [])

    def linger(self, scope: str, conn: str, seconds: float) -> None:
        """Let an entry lapse in `seconds` (instead of its TTL); nothing if it is gone."""
        self._client.zadd(self._keys(scope)[0], {conn: time.time() + seconds}, xx=True)

    def members(self, scope: str) -> list[dict[str, Any]]:
        rows = self._members(keys=self._keys(scope), args=[repr(time.time())])
        return sorted((json.loads(row) for row in rows), key=_member_order)

    def counts(self, scopes: Iterable[str]) -> dict[str, int]:
        scopes = list(scopes)
        pipe = self._client.pipeline(transaction=False)
        for scope in scopes:
            self._members(keys=self._keys(scope), args=[repr(time.time())], client=pipe)
        return {scope: len(rows) for scope, rows in zip(scopes, pipe.execute(), strict=True)}

    def scopes(self) -> list[str]:
        return sorted(s.decode() for s in self._client.smembers(self.prefix + "scopes"))

    def clear(self) -> None:
        """Delete this prefix's keys (tests use a prefix of their own)."""
        keys = list(self._client.scan_iter(match=self.prefix + "*", count=500))
        if keys:
            self._client.delete(*keys)


_store: MemoryPresenceStore | RedisPresenceStore | None = None
_store_lock = threading.Lock()


def get_store() -> MemoryPresenceStore | RedisPresenceStore:
    """The process's store, chosen by NOTIFICATIONS_PRESENCE_BACKEND (as Django picks its email
    backend); by default Redis when REDIS_URL is set, else memory."""
    global _store
    with _store_lock:
        if _store is None:
            _store = import_string(store_path()).from_settings()
        return _store


def store_path() -> str:
    """The dotted path of the configured presence store class."""
    if conf.PRESENCE_BACKEND:
        return conf.PRESENCE_BACKEND
    redis = bool(getattr(settings, "REDIS_URL", ""))
    return f"{__name__}.{'RedisPresenceStore' if redis else 'MemoryPresenceStore'}"


def reset_store() -> None:
    """Forget the process's store (tests switch settings)."""
    global _store
    with _store_lock:
        _store = None


# --- the process's tracker: local entries, heartbeat, announcements ---------------------------


class PresenceTracker:
    """This process's presence entries on one event loop: joins, leaves, heartbeat, sweeps.

    Store calls are blocking (a Redis round trip or a lock), so they run in the default thread
    pool, never on the event loop.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.local: dict[str, dict[str, dict[str, Any]]] = {}  # scope → conn → info
        self.system_watchers = 0
        self._task: asyncio.Task | None = None
        self._sweeps: set[asyncio.Task] = set()
        # One store call at a time per scope: a heartbeat's refresh of a scope must not run
        # after (and so undo) a leave or linger that happened while it was in flight.
        self._locks: dict[str, asyncio.Lock] = {}
        self._joining: dict[str, list[tuple[str, dict[str, Any], asyncio.Future]]] = {}

    def _lock(self, scope: str) -> asyncio.Lock:
        lock = self._locks.get(scope)
        if lock is None:
            lock = self._locks[scope] = asyncio.Lock()
        return lock

    def _forget_lock(self, scope: str) -> None:
        lock = self._locks.get(scope)
        if lock is not None and not lock.locked() and scope not in self.local:
            del self._locks[scope]

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def join(self, scope: str, conn: str, info: dict[str, Any]) -> Change:
        """Add this connection's entry; the change it made (shared by a batch of joins).

        Joins that arrive while a store call for the scope is in flight (a connect storm after
        a restart) are sent together in the next call: one thread hop and one Redis script for
        the lot, instead of one each.
        """
        self.local.setdefault(scope, {})[conn] = info
        self._ensure_heartbeat()
        loop = asyncio.get_running_loop()
        waiting = self._joining.setdefault(scope, [])
        done: asyncio.Future = loop.create_future()
        waiting.append((conn, info, done))
        if len(waiting) == 1:
            task = loop.create_task(self._flush_joins(scope))
            self._sweeps.add(task)
            task.add_done_callback(self._sweeps.discard)
        return await done

    async def _flush_joins(self, scope: str) -> None:
        change = Change(scope)
        batch: list[tuple[str, dict[str, Any], asyncio.Future]] = []
        try:
            async with self._lock(scope):
                batch = self._joining.pop(scope, [])
                # a connection that left while waiting is not added back
                live = self.local.get(scope, {})
                entries = [(conn, info) for conn, info, _ in batch if conn in live]
                if entries:
                    change = await self._call(get_store().join, scope, entries)
        except BaseException as exc:  # (cancelled too) no join may wait forever
            for _, _, done in batch or self._joining.pop(scope, []):
                if not done.done():
                    done.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
            raise
        self._forget_lock(scope)
        try:
            await self.announce(change)  # before the joins return, as one unbatched join would
        finally:
            for _, _, done in batch:
                if not done.done():
                    done.set_result(change)

    async def leave(self, scope: str, conn: str, *, linger: float = 0.0) -> Change | None:
        """Remove this connection's entry, or with `linger`, let it lapse that much later.

        Lingering is for sockets that close because the page changes: the next page's socket
        joins within it, so the person never blinks offline for the others. A sweep just after
        it announces the person gone if nobody came back.
        """
        conns = self.local.get(scope)
        if not conns or conns.pop(conn, None) is None:
            return None
        if not conns:
            self.local.pop(scope, None)
        if linger > 0:
            async with self._lock(scope):
                await self._call(get_store().linger, scope, conn, linger)
            self._forget_lock(scope)
            self._sweeps.add(
                asyncio.get_running_loop().create_task(self._sweep_later(scope, linger))
            )
            return None
        async with self._lock(scope):
            change = await self._call(get_store().leave, scope, [conn])
        self._forget_lock(scope)
        await self.announce(change)
        return change

    async def _sweep_later(self, scope: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay + 0.05)
            await self.announce(await self._call(get_store().sweep, scope))
        except Exception:  # a heartbeat's sweep will catch it
            logger.warning("presence sweep failed", exc_info=True)
        finally:
            self._sweeps.discard(asyncio.current_task())

    async def members(self, scope: str) -> list[dict[str, Any]]:
        return await self._call(get_store().members, scope)

    async def counts(self, scopes: list[str]) -> dict[str, int]:
        return await self._call(get_store().counts, scopes)

    def watch_system(self, delta: int) -> None:
        self.system_watchers = max(0, self.system_watchers + delta)
        if delta > 0:
            self._ensure_heartbeat()

    async def announce(self, change: Change) -> None:
        """Tell the scope's watchers (and, for a tenant, the system admins' counts)."""
        if not change:
            return
        message = {
            "type": "presence.changed",
            "scope": change.scope,
            "added": change.added,
            "removed": change.removed,
            "online": change.online,
        }
        try:
            await self.layer.group_send(presence_group(change.scope), message)
            tenant = tenant_of(change.scope)
            if tenant is not None:
                await self.layer.group_send(
                    PRESENCE_SYSTEM_GROUP,
                    {"type": "presence.count", "tenant": tenant, "online": change.online},
                )
        except Exception:  # the layer is down: the next sweep's figures will be right again
            logger.warning("could not announce a presence change", exc_info=True)

    # heartbeat

    def _ensure_heartbeat(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._heartbeat_forever())

    async def _heartbeat_forever(self) -> None:
        while self.local or self.system_watchers:
            await asyncio.sleep(presence_ttl() / 3)
            try:
                await self.beat()
            except Exception:  # Redis down: entries may lapse; the next beat re-adds them
                logger.warning("presence heartbeat failed", exc_info=True)

    async def beat(self) -> None:
        """Refresh this process's entries and sweep the scopes that others watch here."""
        store = get_store()
        for scope in list(self.local):
            async with self._lock(scope):
                # read under the lock: a leave meanwhile is either done or waits for this refresh
                conns = list(self.local.get(scope, {}).items())
                change = await self._call(store.join, scope, conns) if conns else None
            if change is not None:
                await self.announce(change)
            else:
                self._forget_lock(scope)
        if self.system_watchers:
            scopes = await self._call(store.scopes)
            for scope in scopes:
                if scope not in self.local:
                    await self.announce(await self._call(store.sweep, scope))


_trackers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PresenceTracker] = (
    weakref.WeakKeyDictionary()
)


def tracker(layer: Any) -> PresenceTracker:
    """The tracker of the running event loop (one per server process in production)."""
    loop = asyncio.get_running_loop()
    found = _trackers.get(loop)
    if found is None or found.layer is not layer:
        found = PresenceTracker(layer)
        _trackers[loop] = found
    return found


async def stop_trackers() -> None:
    """Cancel the heartbeat of the running loop's tracker (tests end their loop cleanly)."""
    found = _trackers.pop(asyncio.get_running_loop(), None)
    if found is None:
        return
    for task in [found._task, *found._sweeps]:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def online_members(scope: str) -> list[dict[str, Any]]:
    """Sync read for pages: who is online in `scope` now."""
    return get_store().members(scope)


def online_counts(tenant_ids: Iterable[int]) -> dict[int, int]:
    """Sync read for pages: people online per tenant."""
    ids = list(tenant_ids)
    counts = get_store().counts([tenant_scope(i) for i in ids])
    return {i: counts[tenant_scope(i)] for i in ids}
