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

Backends (chosen by ``NOTIFICATIONS_PRESENCE_BACKEND``, as Django chooses its email backend):
``redis.RedisPresenceStore``, the default when ``REDIS_URL`` is set (shared by every server
process); ``memory.MemoryPresenceStore`` otherwise (the embedded default runs one server
process). This module is the tracker: this process's entries, heartbeat and announcements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from notifications.conf import notification_settings as conf
from notifications.realtime import access
from notifications.realtime.batch import thread_batch
from notifications.realtime.groups import (
    PRESENCE_SYSTEM_GROUP,
    presence_group,
    tenant_of,
    tenant_scope,
)
from notifications.realtime.layers import LayerUnavailable
from notifications.realtime.presence.base import Change, presence_ttl
from notifications.realtime.presence.memory import MemoryPresenceStore
from notifications.realtime.presence.redis import RedisPresenceStore

__all__ = ["Change", "MemoryPresenceStore", "RedisPresenceStore", "presence_ttl"]

logger = logging.getLogger(__name__)

#: what a held change's store read or send raises when Redis cannot be reached (an outage:
#: retried; OSError covers the layer's LayerUnavailable); an error from a store that answered
#: (a script error, a wrong type) is not one
OUTAGE: tuple[type[Exception], ...] = (OSError, RedisConnectionError, RedisTimeoutError)


def presence_grace() -> float:
    """Seconds a closed page's entry lingers, so moving to the next page is not leaving."""
    return conf.PRESENCE_GRACE


def rejoin_wait() -> float:
    """After a lost subscription, how long a member missing from the store may still be put
    back by its own process (a Redis restart loses every entry; each process restores its own
    on its resubscribe, and its heartbeat does within ``ttl / 3``): half a TTL, so a member
    is announced gone only when still missing after that."""
    return presence_ttl() / 2


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


# --- the store: chosen by a setting -------------------------------------------------------------

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
    redis = bool(getattr(settings, "REDIS_HOST", None) or getattr(settings, "REDIS_URL", ""))
    return f"{__name__}.{'redis.RedisPresenceStore' if redis else 'memory.MemoryPresenceStore'}"


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
        self._restored: tuple[int | None, asyncio.Task] | None = None  # (resubscribes, refresh)
        self._flushed: dict[str, float] = {}  # scope → loop time its last batch of joins left
        # Announcements the layer could not take (Redis away, or this process resubscribing):
        # who they were about, per scope, told as the store has them once it can (`_send_held`).
        self._held: dict[str, set[Any]] = {}  # scope → the people of its unannounced changes
        self._held_counts: dict[str, int] = {}  # tenant → its latest online figure
        self._holder: asyncio.Task | None = None
        self._stopped = False  # (stop_trackers: no holder may start after it)
        # One announcement at a time per scope, in the order they were made: a send still in
        # flight (a hung connection) must not be overtaken by a later change of its scope.
        self._order: dict[str, _Turns] = {}

    # During a burst, a scope's joins go to the store at most once per this many seconds: a
    # connect storm at ~1,000 sockets/s otherwise made one thread hop and one Redis script per
    # socket (the store answers faster than the next socket arrives), about a sixth of a
    # handshake's CPU (issue 16). A join in a quiet moment goes at once.
    JOIN_WINDOW = 0.02

    def _lock(self, scope: str) -> asyncio.Lock:
        lock = self._locks.get(scope)
        if lock is None:
            lock = self._locks[scope] = asyncio.Lock()
        return lock

    def _forget_lock(self, scope: str) -> None:
        lock = self._locks.get(scope)
        if lock is not None and not lock.locked() and scope not in self.local:
            del self._locks[scope]
            self._flushed.pop(scope, None)

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
            loop = asyncio.get_running_loop()
            wait = self._flushed.get(scope, -self.JOIN_WINDOW) + self.JOIN_WINDOW - loop.time()
            if wait > 0:  # a burst: the joins of the next moment go with these
                await asyncio.sleep(wait)
            self._flushed[scope] = loop.time()
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
        """The scope's members now; sockets asking together share one executor hop and one
        store read per scope (a gap's re-sync asks for every watching socket at once)."""
        found = await thread_batch(_members_many, in_thread=_in_executor).ask(scope)
        if isinstance(found, Exception):
            raise found
        return found

    async def counts(self, scopes: list[str]) -> dict[str, int]:
        return await self._call(get_store().counts, scopes)

    def watch_system(self, delta: int) -> None:
        self.system_watchers = max(0, self.system_watchers + delta)
        if delta > 0:
            self._ensure_heartbeat()

    @contextlib.asynccontextmanager
    async def _in_order(self, scope: str) -> Any:
        turns = self._order.get(scope)
        if turns is None:
            turns = self._order[scope] = _Turns()
        turns.users += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.users -= 1
            if not turns.users:  # (nobody waits: forget the scope's lock)
                del self._order[scope]

    async def announce(self, change: Change) -> None:
        """Tell the scope's watchers (and, for a tenant, the system admins' counts).

        If the layer cannot take it now (`LayerUnavailable`: Redis away, or this process's
        subscriptions being restored, as while its first sockets connect), the change is held
        and told once it can (`_send_held_scope`): watchers in the other processes, which no
        re-sync tells, would otherwise list a person who left, or miss one who came, until
        they reconnect. Later changes of a scope with one held wait behind it, and so does an
        announcement cancelled while it waited its turn.
        """
        if not change:
            return
        scope = change.scope
        told = False
        try:
            async with self._in_order(scope):
                if scope in self._held:
                    self._hold(change)
                    return
                try:
                    await self.layer.group_send(presence_group(scope), _changed_message(change))
                except LayerUnavailable as exc:
                    self._hold(change, exc)
                    return
                except Exception:  # a bug, not an outage: holding it would not help
                    logger.warning("could not announce a presence change", exc_info=True)
                    return
                told = True
                await self._announce_count(scope, change.online)
        except asyncio.CancelledError:
            if not told:  # (a socket's leave cut short must not leave it listed; it may
                # have taken the last entry, and then no heartbeat would start the holder)
                self._hold(change)
            raise

    async def _announce_count(self, scope: str, online: int) -> None:
        tenant = tenant_of(scope)
        if tenant is None:
            return
        if tenant in self._held_counts:
            self._held_counts[tenant] = online  # (only the latest figure matters)
            return
        try:
            await self.layer.group_send(PRESENCE_SYSTEM_GROUP, _count_message(tenant, online))
        except LayerUnavailable as exc:
            self._held_counts[tenant] = online
            self._start_holding(exc)
        except Exception:
            logger.warning("could not announce a presence count", exc_info=True)

    def _hold(self, change: Change, exc: Exception | None = None) -> None:
        """Hold who `change` was about, and see that the holder runs."""
        people = self._held.setdefault(change.scope, set())
        people.update(info.get("id") for info in change.added)
        people.update(change.removed)
        self._start_holding(exc)

    def _start_holding(self, exc: Exception | None) -> None:
        if self._stopped:
            return
        if self._holder is None or self._holder.done():
            logger.warning(
                "presence changes held until the channel layer takes them again%s",
                f" ({exc})" if exc is not None else "",
            )
            self._holder = asyncio.get_running_loop().create_task(self._send_held())

    #: seconds between attempts to send held changes (doubling from the first, up to the last)
    HOLD_RETRY = (0.05, 2.0)

    async def _send_held(self) -> None:
        """Send the held changes, oldest scope first, then the counts; retry while the layer
        cannot take them. A change that fails for another reason is dropped (logged)."""
        delay, most = self.HOLD_RETRY
        sent = 0
        while self._held or self._held_counts:
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)
            try:
                while self._held:
                    sent += await self._send_held_scope(next(iter(self._held)))
                while self._held_counts:
                    tenant, online = next(iter(self._held_counts.items()))
                    await self.layer.group_send(
                        PRESENCE_SYSTEM_GROUP, _count_message(tenant, online)
                    )
                    if self._held_counts.get(tenant) == online:
                        del self._held_counts[tenant]
            except OUTAGE:
                continue
            except Exception:
                logger.warning("could not announce presence counts", exc_info=True)
                self._held_counts.clear()
        logger.info("presence: %d held changes announced", sent)

    async def _send_held_scope(self, scope: str) -> int:
        """Tell the scope's watchers where the people of its held changes stand now; 1 if a
        message went out.

        From the store, not from the changes: meanwhile other processes, whose layers kept
        working, announced their own transitions of the same people (one came here and left
        over there, or left here, came and went there, and came back here), so no net of this
        process's changes says what the watchers list. Each person held is announced added
        if online (with the store's info), removed if not; the count is the store's. A
        watcher applies either idempotently. A store that cannot be reached is an outage too:
        retried.
        """
        async with self._in_order(scope):  # announces of the scope wait, then hold behind
            people = self._held.pop(scope, None)
            if people is None:
                return 0
            try:
                people |= await self._rejoin(scope)
                change = await self._as_stored(scope, people)
                if change:
                    await self.layer.group_send(presence_group(scope), _changed_message(change))
            except OUTAGE:
                # first again, for the next try, with whoever was held meanwhile (an announce
                # cancelled while it waited its turn holds without the lock)
                people |= self._held.pop(scope, set())
                self._held = {scope: people, **self._held}
                raise
            except Exception:
                logger.warning("could not announce a presence change", exc_info=True)
                return 0
            tenant = tenant_of(scope)
            if tenant is not None:
                self._held_counts[tenant] = change.online  # after the change it counts
            return 1 if change else 0

    async def _rejoin(self, scope: str) -> set[Any]:
        """Put this process's entries of `scope` back in the store; whom that changed (brought
        back, or swept as lapsed on the way).

        An outage that held changes may have been a Redis restart, which lost every entry: read
        before this process's heartbeat restores them, the store would have the people still
        connected here gone, and the watchers would be told so until the next heartbeat.
        """
        joined = await self._join_local(scope)
        self._forget_lock(scope)
        if joined is None:
            return set()
        return {info.get("id") for info in joined.added} | set(joined.removed)

    async def _join_local(self, scope: str) -> Change | None:
        """Re-join this process's entries of `scope` (one store call); None if it has none."""
        async with self._lock(scope):
            # read under the lock: a leave meanwhile is either done or waits for this call
            conns = list(self.local.get(scope, {}).items())
            return await self._call(get_store().join, scope, conns) if conns else None

    async def _as_stored(self, scope: str, people: set[Any]) -> Change:
        members = await self._call(get_store().members, scope)
        online = {info.get("id") for info in members}
        return Change(
            scope,
            added=[info for info in members if info.get("id") in people],
            removed=sorted(person for person in people if person not in online),
            online=len(members),
        )

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
        await self._refresh()
        if self.system_watchers:
            store = get_store()
            scopes = await self._call(store.scopes)
            for scope in scopes:
                if scope not in self.local:
                    await self.announce(await self._call(store.sweep, scope))

    async def restore(self) -> None:
        """After the layer resubscribed: put this process's entries back in the store now.

        A Redis restart loses every entry; until the next heartbeat a re-sync reading the
        store would find live members gone (Pusher: member_removed, then member_added when
        the heartbeat re-adds them). Once per resubscribe of the layer: every socket's re-sync
        calls this, the first one's refresh serves them all.
        """
        mark = getattr(self.layer, "stats", {}).get("resubscribes")  # (None: not counted)
        restored = self._restored
        if (
            mark is None
            or restored is None
            or restored[0] != mark
            or restored[1].cancelled()
            or (restored[1].done() and restored[1].exception() is not None)  # failed: again
        ):
            task = asyncio.get_running_loop().create_task(self._refresh())
            self._restored = (mark, task)
        await asyncio.shield(self._restored[1])

    async def _refresh(self) -> None:
        """Re-join every local entry (one store call per scope) and announce what changed."""
        for scope in list(self.local):
            change = await self._join_local(scope)
            if change is not None:
                await self.announce(change)
            else:
                self._forget_lock(scope)


@dataclass
class _Turns:
    """A scope's announcements, one at a time (`PresenceTracker._in_order`)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holding or waiting for the lock


def _changed_message(change: Change) -> dict[str, Any]:
    return {
        "type": "presence.changed",
        "scope": change.scope,
        "added": change.added,
        "removed": change.removed,
        "online": change.online,
    }


def _count_message(tenant: int, online: int) -> dict[str, Any]:
    return {"type": "presence.count", "tenant": tenant, "online": online}


_trackers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PresenceTracker] = (
    weakref.WeakKeyDictionary()
)


def _members_many(scopes: list[str]) -> list[list[dict[str, Any]] | Exception]:
    """Each scope's members, or the error reading that scope (one bad read fails only the
    sockets that asked for it; `members_many`'s callers raise it)."""
    store = get_store()
    found: dict[str, list[dict[str, Any]] | Exception] = {}
    for scope in set(scopes):
        try:
            found[scope] = store.members(scope)
        except Exception as exc:  # noqa: BLE001 - handed to that scope's askers
            found[scope] = exc
    return [found[scope] for scope in scopes]


def _in_executor(fn: Any) -> Any:
    """Run `fn` in the default thread pool (presence store calls), not the database thread."""

    async def call(*args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    return call


def tracker(layer: Any) -> PresenceTracker:
    """The tracker of the running event loop (one per server process in production)."""
    loop = asyncio.get_running_loop()
    found = _trackers.get(loop)
    if found is None or found.layer is not layer:
        found = PresenceTracker(layer)
        _trackers[loop] = found
    return found


def local_entry_count() -> int:
    """This process's live presence entries, over its trackers (read by config.metrics)."""
    trackers = list(_trackers.values())
    return sum(len(conns) for found in trackers for conns in list(found.local.values()))


async def stop_trackers() -> None:
    """Cancel the heartbeat of the running loop's tracker (tests end their loop cleanly)."""
    found = _trackers.pop(asyncio.get_running_loop(), None)
    if found is None:
        return
    found._stopped = True  # (a task cancelled below may hold its change: no new holder)
    for task in [found._task, found._holder, *found._sweeps]:
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
