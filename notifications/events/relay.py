"""The relay: this process's publisher loop, sending what the outbox hands it to the channel layer.

The outbox (events/outbox.py) claims, numbers and settles the stored events; this module sends
them and runs the loop.

Each server process runs one `Publisher` (an asyncio task started by `ensure_started()`: on an
event loop of its own, on a thread, with a cross-process layer; on the server's loop with the
in-memory one), which drains the outbox in batches: one claim, the sends, one settle, again
while there is a backlog. It is woken at once by a commit in its own process (`wake()`, which is
all a request does after its commit: publishing is not the request's work), by a commit in a
process that has no publisher (a `manage.py shell`, `fire_event`: LISTEN/NOTIFY on PostgreSQL,
see `outbox.notify_publishers`), and otherwise polls every ~200 ms (the safety net: leases run
out, back-offs end, SQLite has no NOTIFY). It sends from its own long-lived event loop, so the
channel layer's connection to Redis is reused. Claims are atomic (one lock, then a lease on the
rows), so two server processes never both publish a row; a process that dies mid-send lets its
lease run out and another one sends the row (at-least-once; clients dedupe by `id`).

Wiring: config/background.py's `BackgroundMiddleware` (outermost in config/asgi.py) calls
`ensure_started()` on ASGI lifespan startup (uvicorn starts the publisher at boot) and on every
connection (daphne has no lifespan), and `stop()` on shutdown. `ensure_started()` is
idempotent and cheap, so a consumer may also call it in `connect()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import DatabaseError, connection

from config import request_log as log_context
from config.metrics import observe_published
from notifications.conf import notification_settings as conf
from notifications.events.outbox import (
    LEADER_LOCK_KEY,
    WAKE_CHANNEL,
    WAKE_CLAIMER_SQL,
    claim,
    settle,
    stale_claimable,
    wake_claimer,
)
from notifications.models import StoredEvent
from notifications.realtime.protocol import event_frame, event_message

logger = logging.getLogger(__name__)


def poll_interval() -> float:
    return conf.POLL_SECONDS


def send_timeout() -> float:
    return conf.SEND_TIMEOUT_SECONDS


def layer_crosses_processes(layer: Any = None) -> bool:
    """Does a group_send from this process reach sockets held by other processes?

    A layer may say so itself (`crosses_processes`); otherwise Channels' in-memory layer does
    not, a layer with an `is_redis` flag (notifications.realtime.layers) does when it has Redis,
    and any other layer (channels-redis) is assumed to.
    """
    layer = layer if layer is not None else get_channel_layer()
    if layer is None:
        return False
    explicit = _declared(layer, "crosses_processes")
    if explicit is not None:
        return bool(explicit)
    if isinstance(layer, InMemoryChannelLayer):
        return False
    is_redis = _declared(layer, "is_redis")
    if is_redis is not None:
        return bool(is_redis)
    return True


def _declared(layer: Any, name: str) -> Any:
    """`layer.<name>` if its class or instance defines it, else None. (Never falls through to
    a `__getattr__`: channels-redis' proxies attributes to a per-loop layer and needs a loop.)"""
    defined = name in getattr(layer, "__dict__", {}) or any(
        name in vars(klass) for klass in type(layer).__mro__
    )
    return getattr(layer, name) if defined else None


# --- the wire format -----------------------------------------------------------------------


def frame(event: StoredEvent, group: str) -> str:
    """The `event` wire frame for `group`, serialized once (the consumer sends it as is)."""
    return event_frame(
        id=event.id,
        event=event.name,
        category=event.category,
        level=event.level,
        title=event.title,
        message=event.message,
        translations=event.translations,
        channel=group,
        data=event.data,
        occurred_at=event.occurred_at,
    )


def layer_messages(event: StoredEvent) -> list[tuple[str, dict[str, Any]]]:
    """(group, channel-layer message) for each target of a claimed event."""
    return [
        (
            target.group,
            event_message(
                frame(event, target.group),
                id=event.id,
                roles=list(target.roles) if target.roles else None,
                exclude=event.exclude,
            ),
        )
        for target in event.targets.all()
    ]


# --- sending (async) -----------------------------------------------------------------------


def layer_is_down(exc: BaseException) -> bool:
    """A connection-type failure (the layer's server is away), as opposed to one bad event."""
    return isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith("redis")


async def send_events(
    rows: list[StoredEvent], layer: Any = None
) -> tuple[list[int], list[StoredEvent]]:
    """group_send each event to each of its groups: (sent ids, rows to retry).

    Stops at the first connection failure (the layer is down: the rest would wait for the
    timeout too); an event the layer rejects for itself is retried alone and does not hold up
    the ones behind it.
    """
    sent, failed, _ = await _send(rows, layer)
    return sent, failed


#: group messages at most per pipelined send (one round trip to the layer)
PIPELINE = 500


async def _send(
    rows: list[StoredEvent], layer: Any = None, until: float | None = None
) -> tuple[list[int], list[StoredEvent], list[StoredEvent]]:
    """`send_events`, stopping at the monotonic time `until`: (sent, failed, not tried).

    A batch is leased for LEASE_SECONDS; a publisher whose sends crawl (its event loop busy
    fanning the previous events out) gives back the tail before the lease runs out, rather
    than letting another process claim it and send it a second time.

    A layer with `group_send_many` (notifications.realtime.layers) gets the events in chunks
    of up to `PIPELINE` group messages, each one round trip to Redis: one await per chunk,
    not per event, so a publisher on a busy event loop (a server's, fanning out) or in a
    process whose request threads hold the GIL is not paced by its loop's turns. A chunk the
    layer rejects before sending (a bad group name) is sent again one event at a time.
    """
    layer = layer if layer is not None else get_channel_layer()
    many = getattr(layer, "group_send_many", None)
    if many is None:
        return await _send_each(rows, layer, until)
    sent: list[int] = []
    failed: list[StoredEvent] = []
    start = 0
    while start < len(rows):
        if until is not None and start and time.monotonic() > until:
            log_context.event_id.set(None)
            return sent, failed, rows[start:]
        end, messages = start, []
        try:
            while end < len(rows) and (end == start or len(messages) < PIPELINE):
                messages += layer_messages(rows[end])
                end += 1
        except Exception:  # a row that cannot be framed: isolate it one event at a time
            end, messages = len(rows), None
        chunk = rows[start:end]
        log_context.event_id.set(chunk[0].id)  # the chunk's first, on its lines
        taken: set[int] = set()  # filled as Redis acknowledges: survives our own timeout
        try:
            if messages is None:
                raise ValueError("a message could not be built")
            async with asyncio.timeout(send_timeout()):
                await many(messages, taken=taken)
        except Exception as exc:
            if not layer_is_down(exc):  # rejected before anything was sent
                chunk_sent, chunk_failed, _ = await _send_each(chunk, layer)
                sent += chunk_sent
                failed += chunk_failed
                start = end
                continue
            # Events whose every message Redis acknowledged before the cut are sent: a
            # retry would give their sockets a second copy.
            done = _fully_taken(chunk, taken | set(getattr(exc, "taken", ())))
            now = time.time()
            for row in chunk:
                if row.id in done:
                    sent.append(row.id)
                    observe_published(row.name, now - row.occurred_at.timestamp())
            retry = [row for row in rows[start:] if row.id not in done]
            log = logger.warning if chunk[0].publish_attempts <= 1 else logger.debug
            log(
                "channel layer unavailable for event %s (%s: %s); %d event(s) will be retried",
                chunk[0].id,
                type(exc).__name__,
                exc,
                len(retry),
            )
            log_context.event_id.set(None)
            return sent, failed + retry, []
        now = time.time()
        for row in chunk:
            sent.append(row.id)
            observe_published(row.name, now - row.occurred_at.timestamp())
        start = end
    log_context.event_id.set(None)
    return sent, failed, []


def _fully_taken(chunk: list[StoredEvent], taken: Any) -> set[int]:
    """The ids of the chunk's events all of whose `layer_messages` are among `taken` (their
    indexes in the chunk's message list, as `group_send_many` numbers them)."""
    taken = set(taken)
    done: set[int] = set()
    index = 0
    for row in chunk:
        count = len(row.targets.all())
        if all(i in taken for i in range(index, index + count)):
            done.add(row.id)
        index += count
    return done


async def _send_each(
    rows: list[StoredEvent], layer: Any, until: float | None = None
) -> tuple[list[int], list[StoredEvent], list[StoredEvent]]:
    """`_send` one group_send at a time (any Channels layer; isolates a rejected event)."""
    sent: list[int] = []
    failed: list[StoredEvent] = []
    for index, row in enumerate(rows):
        if until is not None and index and time.monotonic() > until:
            log_context.event_id.set(None)
            return sent, failed, rows[index:]
        log_context.event_id.set(row.id)  # on the lines logged while it is sent
        try:
            async with asyncio.timeout(send_timeout()):
                for group, message in layer_messages(row):
                    await layer.group_send(group, message)
        except Exception as exc:
            # The first failure of an event is a warning; its retries are noise (debug).
            log = logger.warning if row.publish_attempts <= 1 else logger.debug
            if layer_is_down(exc):
                log(
                    "channel layer unavailable for event %s (%s: %s); %d event(s) will be retried",
                    row.id,
                    type(exc).__name__,
                    exc,
                    len(rows) - index,
                )
                log_context.event_id.set(None)
                return sent, failed + rows[index:], []
            log("channel layer rejected event %s; it will be retried", row.id, exc_info=True)
            failed.append(row)
            continue
        sent.append(row.id)
        observe_published(row.name, time.time() - row.occurred_at.timestamp())
    log_context.event_id.set(None)
    return sent, failed, []


DbRunner = Callable[..., Awaitable[Any]]

#: events per claim: one claim and one settle statement per batch
BATCH = 100
#: a woken publisher claims at most this often (seconds): the longest a commit waits for
#: the batch it joins
CLAIM_GAP = 0.02
#: a follower claims too when claimable events are this old (the claimer is stuck or behind)
FOLLOWER_AFTER = timedelta(seconds=1)


async def publish_pending(
    *,
    layer: Any = None,
    limit: int = BATCH,
    run_db: DbRunner | None = None,
    check_first: bool = True,
) -> int:
    """Claim and send what is unpublished; returns how many were sent. For tests and the loop."""
    run_db = run_db or (lambda fn, *a, **kw: database_sync_to_async(fn)(*a, **kw))
    until = time.monotonic() + conf.LEASE_SECONDS / 2
    rows = await run_db(claim, limit=limit, check_first=check_first)
    if not rows:
        return 0
    sent, failed, unsent = await _send(rows, layer, until)
    await run_db(settle, sent, failed, unsent)
    return len(sent) + len(unsent)  # (given back: more to do at once)


# --- the per-process publisher -------------------------------------------------------------


class Publisher:
    """Drains the outbox from one event loop: poll every `interval`, or at once when woken.

    On PostgreSQL one publisher among all processes claims: the one whose LISTEN connection
    holds the session advisory lock `LEADER_LOCK_KEY` (the claimer). The others (followers)
    only tell it, by NOTIFY, at most once per CLAIM_GAP, that their process committed (from
    that connection, which only the claimer LISTENs on); so the
    claims are not contended by every process and each carries the commits of all of them.
    The claimer's death closes its connection and frees the lock: a follower takes it at its
    next poll. A claimer that is alive but stuck (or far behind) is covered by the followers,
    which claim as before once claimable events are FOLLOWER_AFTER old. The claim itself is
    unchanged (its transaction lock still serializes it), so the guarantees do not rest on
    there being one claimer. Opt-in (NOTIFICATIONS_SINGLE_CLAIMER=1): it saves claims and
    lock waits, but each commit of a follower reaches the claimer through two more processes
    (its publisher, PostgreSQL's NOTIFY), and one process then does every event's claiming,
    framing and sending: in bench/e2e.py at 1,000 events/s (6 publishers) that process fell
    behind (batches of 100, commit → published p50 0.3–1 s, against 64–112 ms with every
    publisher claiming, whose claims picked an event up 2–6 ms after its commit). Otherwise,
    and on SQLite (no LISTEN), every publisher claims.
    """

    def __init__(self, *, interval: float | None = None) -> None:
        self.interval = interval if interval is not None else poll_interval()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.owns_loop = False  # True: runs on a thread ensure_started() made for it
        self.task: asyncio.Task | None = None
        self.listener: asyncio.Task | None = None
        #: True while LISTEN/NOTIFY wakes this publisher (PostgreSQL), or, a follower, while
        #: its LISTEN connection is up to NOTIFY the claimer
        self.listening = False
        #: True while this publisher is the one that claims (always, unless `elects`)
        self.leading = True
        #: contends for the claimer's lock (PostgreSQL with NOTIFICATIONS_SINGLE_CLAIMER)
        self.elects = False
        self._committed = False  # a commit of this process woke it (wake())
        self._wake: asyncio.Event | None = None
        #: a follower's commit for the claimer to hear of (`_follow`)
        self._tell: asyncio.Event | None = None
        # One thread with its own long-lived DB connection: polling never opens connections
        # and never queues behind request threads.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="notifications-publisher")

    @property
    def running(self) -> bool:
        return (
            self.task is not None
            and not self.task.done()
            and self.loop is not None
            and not self.loop.is_closed()
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

        def _create() -> None:
            self._wake = asyncio.Event()
            self._tell = asyncio.Event()
            self.task = loop.create_task(self.run(), name="notifications-publisher")
            if connection.vendor == "postgresql":
                self.elects = bool(conf.SINGLE_CLAIMER)
                self.leading = not self.elects  # until the listener holds the claimer's lock
                self.listener = loop.create_task(self.listen(), name="notifications-listener")

        if _running_loop() is loop:
            _create()
        else:
            done = threading.Event()
            loop.call_soon_threadsafe(lambda: (_create(), done.set()))
            done.wait(5)

    def wake(self) -> None:
        """Thread-safe: publish now rather than at the next poll. Costs a few microseconds
        (nothing when a wake is already pending), so a request can call it after its commit."""
        loop, event = self.loop, self._wake
        self._committed = True
        if loop is not None and event is not None and not loop.is_closed() and not event.is_set():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def listen(self) -> None:
        """LISTEN for commits of processes without a publisher; reconnect after a failure.

        Its own connection (psycopg's async one, on this loop): a notification only wakes the
        loop, the claim still decides what is sent, so a lost notification costs a poll.
        """
        import psycopg

        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    _conninfo(),
                    autocommit=True,
                    connect_timeout=5,
                    # a claimer whose host vanished lets go of the lock in a minute, not the
                    # kernel's two hours
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=6,
                ) as conn:
                    self.leading = not self.elects  # a claimer again only with the lock
                    delay, listens = 0.1, False
                    while True:
                        if self.elects and not self.leading:  # try to become it, every poll
                            cursor = await conn.execute(
                                "SELECT pg_try_advisory_lock(%s)", [LEADER_LOCK_KEY]
                            )
                            row = await cursor.fetchone()
                            self.leading = bool(row and row[0])
                        if self.leading:
                            # Only a claimer LISTENs: followers have nothing to claim, and
                            # each would receive (and ignore) every other one's wake-up.
                            if not listens:
                                await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                                listens = self.listening = True
                                self._set_wake()  # anything committed while not listening
                            async for _ in conn.notifies():
                                self._set_wake()
                        else:
                            self.listening = True  # (its connection is up: `_follow` tells)
                            await self._follow(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: poll meanwhile, try again
                if self.listening:
                    logger.warning("notifications publisher: LISTEN lost (%s); polling", exc)
            finally:
                self.listening = False
                # The lock went with the connection. Until it is back, claim as a publisher
                # does without the single claimer: with no connection to hold the lock there
                # may be no claimer at all, and followers alone deliver a second late.
                self.leading = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _follow(self, conn: Any) -> None:
        """A follower's turn on its LISTEN connection, until the next try for the lock: tell
        the claimer of this process's commits (`run` asks, at most once per CLAIM_GAP) by a
        NOTIFY from here, one round trip on this loop rather than a hop to the DB thread."""
        assert self._tell is not None
        clock = asyncio.get_running_loop().time
        until = clock() + self.interval
        while (left := until - clock()) > 0:
            try:
                await asyncio.wait_for(self._tell.wait(), left)
            except TimeoutError:
                return
            self._tell.clear()
            # (outside the timeout: a query cancelled half-way could break the connection)
            await conn.execute(WAKE_CLAIMER_SQL, [WAKE_CHANNEL])

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _run_db_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DatabaseError:
            connection.close()  # reconnect next time (server restarted, connection dropped)
            raise

    async def run_db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: self._run_db_sync(fn, *args, **kwargs)
        )

    async def run(self) -> None:
        assert self._wake is not None
        failures = 0
        woken = False
        clock = asyncio.get_running_loop().time
        last_claim = -CLAIM_GAP
        last_check = clock()
        backlog = False
        while True:
            if woken and not backlog:
                # Commits that come while this waits ride along in the same claim: under load
                # one claim per CLAIM_GAP instead of one per commit (each is a lock, a durable
                # commit and a settle); an idle publisher claims at once.
                await asyncio.sleep(max(0.0, last_claim + CLAIM_GAP - clock()))
            last_claim = clock()
            self._wake.clear()
            # (woken too: a wake() between reading and clearing `_committed` set the event)
            committed, self._committed = self._committed or woken, False
            try:
                if self.leading:
                    # Woken by a commit (or draining a backlog): there is work, skip the check.
                    sent = await publish_pending(run_db=self.run_db, check_first=not woken)
                else:
                    if committed:
                        if self.listening and self._tell is not None:
                            self._tell.set()  # sent by the LISTEN connection (`_follow`)
                        else:
                            await self.run_db(wake_claimer)
                    sent = 0
                    if backlog or clock() - last_check >= self.interval:  # drain a backlog
                        last_check = clock()
                        if await self.run_db(stale_claimable, FOLLOWER_AFTER):
                            sent = await publish_pending(run_db=self.run_db, check_first=False)
                if sent:
                    failures = 0  # (an idle round while backing off is no recovery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                sent = 0
                if failures == 1 or failures % 50 == 0:
                    logger.warning("notifications publisher: %s (attempt %d)", exc, failures)
            backlog = sent >= BATCH
            if backlog:
                woken = True
                continue  # a backlog: keep draining, no pause
            woken = False
            # After a round that sent, look again soon even unwoken: a stream of commits from
            # other processes then needs no wake-up per claim.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), CLAIM_GAP if sent else self.interval)
                woken = True

    def discard(self) -> None:
        """Release the DB thread of a publisher whose loop is gone (closing its connection)."""
        if self.listener is not None and self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.listener.cancel)
        with contextlib.suppress(RuntimeError):
            self._executor.submit(lambda: connection.close())
        self._executor.shutdown(wait=False)

    async def stop(self) -> None:
        """Cancel the loop and close this publisher's database connections."""
        tasks = [t for t in (self.listener, self.task) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:  # (a listener closing a connection to a database that is away: not forever)
            await asyncio.wait(tasks, timeout=5)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, lambda: connection.close())
        self._executor.shutdown(wait=False)


def _conninfo() -> str:
    """libpq connection string of the default database (the test database under pytest)."""
    from django.db import connections
    from psycopg.conninfo import make_conninfo

    db = connections["default"].settings_dict
    libpq = ("sslmode", "sslrootcert", "sslcert", "sslkey", "service", "passfile", "options")
    options = {k: v for k, v in (db.get("OPTIONS") or {}).items() if k in libpq}
    fields = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"]}
    fields |= {"host": db["HOST"], "port": db["PORT"]}
    return make_conninfo(**{k: v for k, v in (options | fields).items() if v not in ("", None)})


_lock = threading.Lock()
_publisher: Publisher | None = None
_warned_no_loop = False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _start_thread_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:  # stopped by stop(): close it here, in its own thread (layers clean up)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    threading.Thread(target=run, name="notifications-publisher-loop", daemon=True).start()
    return loop


def ensure_started() -> Publisher | None:
    """Start this process's publisher once; safe to call any number of times, from anywhere.

    With a cross-process layer (Redis) it runs on an event loop of its own, on a daemon thread,
    even when called on the server's loop: there its sends and claims would wait behind the
    fan-out of everything already received (a server seconds behind on a busy tenant timed
    its sends out after 2 s, and their retries reached the sockets twice). With the in-memory
    layer it must run on the server's loop (the queues belong to it), so called with no
    running loop it does nothing.
    """
    global _publisher, _warned_no_loop
    loop = _running_loop()
    owns_loop = False
    with _lock:
        current = _publisher
        if current is not None and current.running:
            return current
        if current is not None:  # its loop is gone (a test's loop, a reloaded server)
            current.discard()
        crosses = layer_crosses_processes()
        if loop is None or crosses:
            if not crosses:
                if not _warned_no_loop:
                    logger.warning(
                        "notifications publisher not started: the in-memory layer needs the "
                        "server's event loop (call ensure_started() from the ASGI app)"
                    )
                    _warned_no_loop = True
                return None
            loop, owns_loop = _start_thread_loop(), True
        tune_thread_switching()
        publisher = Publisher()
        publisher.owns_loop = owns_loop
        publisher.start(loop)
        _publisher = publisher
        return publisher


def tune_thread_switching() -> None:
    """Set the interpreter's thread switch interval to NOTIFICATIONS_SWITCH_INTERVAL_SECONDS
    (0: leave it).

    Each step of a publisher's round is a hand-over between its threads (a request's commit →
    its event loop → its DB thread → its loop), and a thread that wants the GIL waits up to the
    switch interval (Python's default: 5 ms) for one that computes: a request thread, the
    fan-out. A round makes about six such hand-overs; in bench/e2e.py (emitters of 4 request
    threads) 1 ms took claimed → published p50 to 0.76× of Python's 5 ms (median of 7
    alternating pairs). Process-wide: set where a publisher starts, i.e. in every server.
    """
    interval = conf.SWITCH_INTERVAL_SECONDS
    if interval > 0 and sys.getswitchinterval() != interval:
        sys.setswitchinterval(interval)


def current() -> Publisher | None:
    """This process's publisher if it runs."""
    publisher = _publisher
    return publisher if publisher is not None and publisher.running else None


def wake() -> None:
    """Ask this process's publisher (if any) to publish now."""
    publisher = current()
    if publisher is not None:
        publisher.wake()


async def stop() -> None:
    """Stop this process's publisher (tests, server shutdown)."""
    global _publisher
    with _lock:
        publisher, _publisher = _publisher, None
    if publisher is None:
        return
    if publisher.loop is _running_loop():
        await publisher.stop()
    elif publisher.loop is not None and publisher.loop.is_running():  # its own thread's loop
        loop = publisher.loop
        stopping = asyncio.run_coroutine_threadsafe(publisher.stop(), loop)
        try:  # a database call stuck in its thread must not hold the server's shutdown
            await asyncio.wait_for(asyncio.wrap_future(stopping), timeout=10)
        except TimeoutError:
            logger.warning("the publisher did not stop within 10 s; leaving it")
        if publisher.owns_loop:
            loop.call_soon_threadsafe(loop.stop)  # ends the thread started for it
    else:
        publisher.discard()
