"""A Channels layer built for fan-out: one Redis subscription per group per process.

Why not channels-redis: its default layer keeps one Redis list per socket and silently drops
messages once a socket is 100 behind; its pub/sub layer re-decodes every message per socket and
tops out far below what the sockets can take. This layer keeps the standard Channels interface
(``new_channel``, ``send``, ``receive``, ``group_add``, ``group_discard``, ``group_send``,
``flush``) so consumers stay plain Channels consumers, and changes what happens underneath:

* Group membership lives in the process that holds the channel. The process subscribes to a
  group's Redis pub/sub channel when its first local member joins and unsubscribes when the last
  one leaves; ``group_send`` is one ``PUBLISH``. On receipt the message is decoded once and the
  same dict is put in every local member's inbox (no per-socket Redis queue, no re-serialization:
  the product's messages carry the wire frame pre-serialized in ``text``). Receivers must treat
  delivered messages as read-only.
* Every channel has a bounded inbox (``capacity``). A channel that falls that far behind on a
  group or cross-process message is not allowed to stall the others or grow memory: its inbox is
  dropped, it leaves all its groups, and it receives ``overflow_message`` (by default
  ``{"type": "notify.close", "code": 4408, "reason": "too slow"}``), which the consumer acts on
  by closing the socket. The client loses nothing: it reconnects and resumes from stored events.
  A direct ``send()`` to a full channel in this process raises ``ChannelFull`` as usual.
* Redis restarts, failovers and silently dead connections are survived: the reader reads with
  finite timeouts, PINGs its subscription after ``health_check_interval`` quiet seconds and
  declares it dead when no answer comes within as long again (a paused server, a NAT that
  dropped the flow; TCP keepalive is on as well), then reconnects with back-off and resubscribes
  every group (and this process's channel). While Redis is unreachable, or while this process's
  subscriptions are not yet restored, ``group_send``/``send`` raise ``LayerUnavailable`` instead
  of silently dropping, so the caller (the outbox publisher) keeps the event and retries.
* What was published while the subscription was dead is gone from pub/sub, so once every key is
  subscribed again each local channel that is in a group gets ``resubscribed_message`` (by
  default ``{"type": "notify.resubscribed"}``) *before* any message read on the new connection;
  the consumer replays from the stored events what it missed (consumers.py). redis-py is never
  allowed to reconnect the subscription on its own (it would resubscribe without telling).
  ``stats`` counts ``reconnects``, ``dead_subscriptions`` and ``resubscribes``.
* Connections are built by notifications.realtime.connections from a channels_redis host spec:
  a URL (``rediss://`` for TLS) or a Sentinel master (``master_name`` + ``sentinels``).
* Process-specific channels (``new_channel()`` names, ``...!...``) work across processes: each
  process subscribes once to its own Redis channel and routes by name. Plain channel names
  (``send("worker", ...)`` without ``!``) in Redis mode have pub/sub semantics, exactly like
  channels-redis's ``RedisPubSubChannelLayer``: a message reaches whoever is receiving on that
  name at the time, and is gone if nobody is. The product never uses them (no ``runworker``).
* Without ``hosts`` the layer is process-local (the embedded default, replacing
  ``InMemoryChannelLayer``, whose ``group_send`` copies the message and creates a task per
  member). Other processes reach it through the outbox, not through the layer.

Messages do not expire (``expiry`` is accepted for compatibility): the bounded inbox is what
keeps memory in check.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgpack
from channels.consumer import get_handler_name
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, InMemoryChannelLayer

from notifications.realtime import connections
from notifications.realtime.protocol import RESUBSCRIBED_MESSAGE, TOO_SLOW_MESSAGE, random_bytes

logger = logging.getLogger(__name__)

DEFAULT_OVERFLOW_MESSAGE = TOO_SLOW_MESSAGE
HEALTH_CHECK_TOKEN = b"fanout-layer-health"


class LayerUnavailable(ConnectionError):
    """Redis is unreachable (or this process has not resubscribed yet): nothing was sent, but
    for `taken`, the indexes of a `group_send_many` batch's messages that Redis acknowledged."""

    def __init__(self, *args: object, taken: set[int] | frozenset[int] = frozenset()) -> None:
        super().__init__(*args)
        self.taken = frozenset(taken)


class DeadSubscription(ConnectionError):
    """The subscription connection stopped answering (or was reconnected behind our back)."""


class _Inbox:
    """One channel's bounded queue of messages plus the receivers waiting on it."""

    __slots__ = ("queue", "waiters", "capacity", "groups", "closed", "sink")

    def __init__(self, capacity: int) -> None:
        # Allocated only while messages wait (most sockets are idle most of the time: an empty
        # deque costs ~600 bytes, times 10,000 sockets).
        self.queue: collections.deque | None = None
        self.waiters: list[asyncio.Future] = []
        self.capacity = capacity
        self.groups: set[str] = set()
        self.closed = False
        #: The receiver's synchronous handler (`set_sink`), or None.
        self.sink: Callable[[list[dict]], bool] | None = None


def _wake_threadsafe(inbox: _Inbox, fut: asyncio.Future, message: dict) -> None:
    if fut.done():
        if inbox.queue is None:
            inbox.queue = collections.deque()
        inbox.queue.appendleft(message)
    else:
        fut.set_result(message)


class FanoutChannelLayer(BaseChannelLayer):
    """Channels layer: local fan-out per process, Redis pub/sub (one channel per group) between."""

    extensions = ["groups", "flush"]
    READ_BATCH = 64

    def __init__(
        self,
        hosts: list[str] | None = None,
        prefix: str = "asgi",
        capacity: int = 1000,
        channel_capacity: dict | None = None,
        expiry: int = 60,
        overflow_message: dict | None = None,
        resubscribed_message: dict | None = None,
        reconnect_max_delay: float = 1.0,
        health_check_interval: float | str = 2.0,
        recent_events: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        if isinstance(hosts, str):
            raise ValueError("hosts must be a list of Redis hosts, even if there is only one.")
        if hosts and len(hosts) > 1:
            raise ValueError("FanoutChannelLayer talks to one Redis (no sharding); give one host.")
        #: The channels_redis host spec (URL or Sentinel), None in process-local mode.
        self.host: dict[str, Any] | None = connections.decode_host(hosts[0]) if hosts else None
        self.redis_url: str | None = self.host.get("address") if self.host else None
        self.prefix = prefix
        self.overflow_message = dict(overflow_message or DEFAULT_OVERFLOW_MESSAGE)
        self.resubscribed_message = dict(resubscribed_message or RESUBSCRIBED_MESSAGE)
        self.reconnect_max_delay = reconnect_max_delay
        self.health_check_interval = float(health_check_interval)
        if not self.health_check_interval > 0:
            raise ValueError("health_check_interval must be a positive number of seconds.")
        #: Counters for operators (config/metrics.py reads them): subscription connections lost
        #: (`reconnects`), of which found dead by the health check (`dead_subscriptions`), and
        #: subscriptions restored after a loss (`resubscribes`).
        self.stats: dict[str, int] = {"reconnects": 0, "dead_subscriptions": 0, "resubscribes": 0}
        #: The id of the newest event (notify.event) this process received from Redis: a socket
        #: that joins now can have missed nothing before it (consumers' replay after a gap).
        self.last_event_id: int | None = None
        #: The ids of the last `recent_events` events received (oldest first): a replay after
        #: a gap skips them, since its sockets got them live (publishers send out of position
        #: order, so a replay from the last id can include some: gap.py). Sized by
        #: NOTIFICATIONS_GAP_RECENT_EVENTS: a socket whose last live event is older than that
        #: many events of this process may be re-sent the few delivered just before it.
        self.recent_event_ids: dict[int, None] = {}
        if recent_events is None:
            from notifications.conf import notification_settings

            recent_events = notification_settings.GAP_RECENT_EVENTS
        self.recent_events = int(recent_events)
        # This process's identity inside channel names: "specific.<client_id>!<random>".
        self.client_id = secrets.token_hex(8)
        self._inboxes: dict[str, _Inbox] = {}
        self._wakes: list[tuple[_Inbox, asyncio.Future, dict]] | None = None  # see _deliver
        self._groups: dict[str, set[str]] = {}
        self.overflows = 0
        # Redis mode state.
        self._publishers: dict[asyncio.AbstractEventLoop, Any] = {}
        self._reader_task: asyncio.Task | None = None
        self._pubsub: Any = None
        self._healthy = False
        self._ready: asyncio.Event | None = None
        self._pending_subs: dict[str, list[asyncio.Future]] = {}
        self._general: set[str] = set()
        self._background: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ names / keys

    @property
    def is_redis(self) -> bool:
        return self.host is not None

    @property
    def crosses_processes(self) -> bool:
        """Whether a group_send here reaches sockets held by other processes."""
        return self.is_redis

    @property
    def healthy(self) -> bool:
        """False while Redis mode cannot publish or has not restored its subscriptions."""
        if not self.is_redis:
            return True
        return self._reader_task is None or self._healthy

    def _group_key(self, group: str) -> str:
        return f"{self.prefix}:g:{group}"

    def _process_key(self, client_id: str) -> str:
        return f"{self.prefix}:p:{client_id}"

    def _channel_key(self, channel: str) -> str:
        return f"{self.prefix}:c:{channel}"

    @staticmethod
    def _client_id_of(channel: str) -> str:
        """The process id inside a specific channel name ("specific.<id>!<random>")."""
        head = channel[: channel.index("!")]
        return head.rsplit(".", 1)[-1]

    def _is_local(self, channel: str) -> bool:
        return "!" not in channel or self._client_id_of(channel) == self.client_id

    def _inbox(self, channel: str) -> _Inbox:
        inbox = self._inboxes.get(channel)
        if inbox is None:
            inbox = self._inboxes[channel] = _Inbox(self.get_capacity(channel))
        return inbox

    # ------------------------------------------------------------------ local delivery

    def _deliver(self, channel: str, inbox: _Inbox, message: dict, loop: Any) -> None:
        """Queue one message for one channel; a channel too far behind is cut off, not waited on."""
        if inbox.closed:
            return
        waiters = inbox.waiters
        while waiters:
            fut = waiters.pop(0)
            if fut.done():
                continue
            if fut.get_loop() is loop:
                # Woken one loop turn later, all together (`_wake_all`): a client frame that
                # arrived with this message is read first (realtime.mailbox handles it first).
                wakes = self._wakes
                if wakes is None:
                    wakes = self._wakes = []
                    loop.call_soon(self._wake_all)
                wakes.append((inbox, fut, message))
            else:
                fut.get_loop().call_soon_threadsafe(_wake_threadsafe, inbox, fut, message)
            return
        queue = inbox.queue
        if queue is None:
            queue = inbox.queue = collections.deque()
        elif len(queue) >= inbox.capacity:
            self._overflow(channel, inbox)
            return
        queue.append(message)

    def _wake_all(self) -> None:
        """Complete the futures of the receivers `_deliver` found waiting (one handle per turn,
        not per socket); a future completed meanwhile leaves its message first in the queue.

        A receiver with a sink (`set_sink`) that is still waiting is offered its message and
        whatever queued behind it this turn, in order, first: when the sink takes them (True)
        they are handled, its future stays pending and it keeps waiting; no task runs.
        """
        wakes, self._wakes = self._wakes or [], None
        for inbox, fut, message in wakes:
            sink = inbox.sink
            if sink is not None and not fut.done() and not inbox.closed:
                queue = inbox.queue
                try:
                    taken = sink([message, *queue] if queue else [message])
                except Exception:  # one receiver's bug must not stop the others' wake-ups
                    logger.exception("channel layer: a receiver's sink failed; waking it instead")
                    inbox.sink, taken = None, False
                if taken:
                    inbox.queue = None
                    inbox.waiters.append(fut)
                    continue
            _wake_threadsafe(inbox, fut, message)

    def _overflow(self, channel: str, inbox: _Inbox) -> None:
        self.overflows += 1
        logger.warning(
            "channel %s fell %d messages behind; disconnecting it", channel, inbox.capacity
        )
        inbox.queue = collections.deque([dict(self.overflow_message)])
        inbox.closed = True
        for group in list(inbox.groups):
            if self._leave(group, channel, inbox) and self.is_redis:
                task = asyncio.get_running_loop().create_task(self._unsubscribe(group))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    def _fan_out(self, group: str, message: dict) -> None:
        members = self._groups.get(group)
        if not members:
            return
        loop = asyncio.get_running_loop()
        inboxes = self._inboxes
        for channel in tuple(members):
            inbox = inboxes.get(channel)
            if inbox is not None:
                self._deliver(channel, inbox, message, loop)

    # ------------------------------------------------------------------ channel API

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A channel name owned by this process; in Redis mode reachable from any process."""
        channel = f"{prefix}{self.client_id}!{random_bytes(6).hex()}"
        self._inbox(channel)
        if self.is_redis:
            await self._ensure_reader()
        return channel

    async def send(self, channel: str, message: dict) -> None:
        """Send to one channel; raises ChannelFull if it is local and full."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        if not self.is_redis or ("!" in channel and self._is_local(channel)):
            inbox = self._inbox(channel)
            if inbox.closed:
                return
            if not inbox.waiters and len(inbox.queue or ()) >= inbox.capacity:
                raise ChannelFull(channel)
            self._deliver(channel, inbox, copy.deepcopy(message), asyncio.get_running_loop())
            return
        if "!" in channel:
            key = self._process_key(self._client_id_of(channel))
            payload = dict(message, __asgi_channel__=channel)
        else:
            key = self._channel_key(channel)
            payload = message
        await self._publish(key, payload)

    async def receive(self, channel: str) -> dict:
        """The next message for a channel of this process (waits until there is one)."""
        inbox = self._inboxes.get(channel)
        if inbox is None:
            self.require_valid_channel_name(channel)
            if self.is_redis and not self._is_local(channel):
                raise RuntimeError(f"{channel} belongs to another process; receive it there")
            inbox = self._inbox(channel)
        if inbox.queue:
            return self._take(channel, inbox)
        if self.is_redis:
            if "!" not in channel and channel not in self._general:
                self._general.add(channel)
                await self._ensure_reader()
                await self._subscribe(self._channel_key(channel))
            elif self._reader_task is None or self._reader_task.done():
                await self._ensure_reader()
        fut = asyncio.get_running_loop().create_future()
        inbox.waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            # The consumer is going away: forget an inbox nobody can reach any more.
            idle = not inbox.queue and not inbox.groups
            if (
                idle
                and self._inboxes.get(channel) is inbox
                and all(w.done() for w in inbox.waiters)
            ):
                self._inboxes.pop(channel, None)
            raise

    def receive_into(self, channel: str, fut: asyncio.Future) -> bool:
        """Complete `fut` with the channel's next message: now if one is queued, else on delivery.

        The lean consumer loop (realtime.mailbox.ConsumerLoop) waits on one future for both
        its client and this layer; `fut` may be completed by someone else first (a client frame),
        and is then skipped here. A delivery completes it one loop turn after it arrives, so the
        caller need not yield again for client frames that arrived with it. False when only
        `receive()` can wait (it first has to subscribe, or restart the Redis reader): the caller
        uses that instead.
        """
        inbox = self._inboxes.get(channel)
        if inbox is None:
            return False
        if inbox.queue:
            fut.set_result(self._take(channel, inbox))
            return True
        if self.is_redis and (
            ("!" not in channel and channel not in self._general)
            or self._reader_task is None
            or self._reader_task.done()
        ):
            return False
        waiters = inbox.waiters
        if waiters:
            waiters[:] = [w for w in waiters if not w.done()]
        waiters.append(fut)
        return True

    def set_sink(self, channel: str, sink: Callable[[list[dict]], bool] | None) -> None:
        """Let a local channel's receiver handle deliveries synchronously while it waits.

        When a message arrives for the channel and its receiver is waiting (`receive_into`),
        `sink(messages)` is called instead of completing the receiver's future: the message and
        those queued behind it, oldest first. True means all of them were handled (the receiver
        keeps waiting); False means none was, and they are delivered as usual. The sink must
        not wait or call back into the layer. Not part of the Channels layer spec.
        """
        inbox = self._inboxes.get(channel)
        if inbox is not None:
            inbox.sink = sink

    def release(self, channel: str) -> None:
        """The channel's consumer has ended: forget its inbox unless it is still in a group."""
        inbox = self._inboxes.get(channel)
        if inbox is not None and not inbox.groups:
            self._inboxes.pop(channel, None)

    def receive_nowait(self, channel: str) -> dict | None:
        """The next queued message of a local channel, or None (never waits).

        Lets a consumer drain what piled up during a burst in one go (LayerEventDispatchMixin)
        instead of one task switch per message. Not part of the Channels layer spec.
        """
        inbox = self._inboxes.get(channel)
        if inbox is None or not inbox.queue:
            return None
        return self._take(channel, inbox)

    def _take(self, channel: str, inbox: _Inbox) -> dict:
        """The oldest queued message of a non-empty inbox; a closed inbox goes when emptied."""
        message = inbox.queue.popleft()
        if not inbox.queue:
            inbox.queue = None
            if inbox.closed:
                self._inboxes.pop(channel, None)
        return message

    # ------------------------------------------------------------------ groups API

    async def group_add(self, group: str, channel: str) -> None:
        """Join a group; the first local member subscribes this process to it."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        if self.is_redis and not self._is_local(channel):
            raise RuntimeError(
                "group_add() takes channels of this process (self.channel_name in a consumer)."
            )
        inbox = self._inbox(channel)
        if inbox.closed:
            return
        members = self._groups.get(group)
        first = not members
        if members is None:
            members = self._groups[group] = set()
        members.add(channel)
        inbox.groups.add(group)
        if self.is_redis and first:
            await self._ensure_reader()
            await self._subscribe(self._group_key(group))

    async def group_discard(self, group: str, channel: str) -> None:
        """Leave a group; the last local member unsubscribes this process from it."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        inbox = self._inboxes.get(channel)
        emptied = self._leave(group, channel, inbox)
        if emptied and self.is_redis:
            await self._unsubscribe(group)

    def _leave(self, group: str, channel: str, inbox: _Inbox | None) -> bool:
        """Drop one membership; True when the group has no local member left."""
        if inbox is not None:
            inbox.groups.discard(group)
        members = self._groups.get(group)
        if not members or channel not in members:
            return False
        members.discard(channel)
        if members:
            return False
        del self._groups[group]
        return True

    async def group_send(self, group: str, message: dict) -> None:
        """Deliver to every member in every process: one PUBLISH (Redis) or a local fan-out."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        if self.is_redis:
            await self._publish(self._group_key(group), message)
        else:
            self._fan_out(group, copy.deepcopy(message))

    async def group_send_many(
        self, messages: list[tuple[str, dict]], *, taken: set[int] | None = None
    ) -> None:
        """`group_send` each (group, message) in order; in Redis mode one pipelined round trip.

        Every group name is checked and every message serialized before anything is sent, so
        a ValueError/TypeError means nothing went out (the outbox publisher then retries the
        batch one event at a time, to isolate the bad one). A connection failure is retried
        once with only the messages Redis had not acknowledged; `LayerUnavailable.taken` then
        names those it had (the caller resends the rest, at-least-once: a message sent but not
        acknowledged before the cut may still arrive twice). A caller's own `taken` set is
        filled as the replies are read, so one that gives up waiting (a send timeout: Redis
        hung part-way, no error to carry the set) still knows which messages went out.
        """
        for group, message in messages:
            assert isinstance(message, dict), "message is not a dict"
            self.require_valid_group_name(group)
        if self.is_redis:
            await self._publish_many([(self._group_key(g), m) for g, m in messages], taken)
        else:
            for group, message in messages:
                self._fan_out(group, copy.deepcopy(message))

    # ------------------------------------------------------------------ flush / close

    async def flush(self) -> None:
        """Forget every channel and group, and drop Redis connections (reopened on demand)."""
        self._inboxes = {}
        self._groups = {}
        self._general = set()
        await self.close()

    async def close(self) -> None:
        task, self._reader_task = self._reader_task, None
        self._healthy = False
        if task is not None and not task.done():
            if task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            else:
                task.get_loop().call_soon_threadsafe(task.cancel)
        self._pubsub = None
        loop = asyncio.get_running_loop()
        client = self._publishers.pop(loop, None)
        if client is not None:
            with contextlib.suppress(Exception):  # closing a dead connection is fine
                await client.aclose()

    # ------------------------------------------------------------------ Redis mode

    def _publisher(self) -> Any:
        """This loop's pooled publishing client (connections are reused, PINGed when idle)."""
        loop = asyncio.get_running_loop()
        client = self._publishers.get(loop)
        if client is None:
            for old in [lp for lp in self._publishers if lp.is_closed()]:
                del self._publishers[old]
            client = connections.async_client(
                self.host, retries=1, socket_connect_timeout=1, socket_timeout=5
            )
            self._publishers[loop] = client
        return client

    def _resubscribing(self) -> bool:
        """A live reader is restoring this process's subscriptions (a reader left behind on a
        closed loop, e.g. by an earlier `async_to_sync`, holds nothing back)."""
        task = self._reader_task
        if task is None or task.done() or task.get_loop().is_closed():
            return False
        return not self._healthy

    async def _publish(self, key: str, message: dict) -> None:
        from redis.exceptions import RedisError

        if self._resubscribing():
            raise LayerUnavailable("channel layer is resubscribing to Redis; retry later")
        data = msgpack.packb(message, use_bin_type=True)
        client = self._publisher()
        try:
            await client.publish(key, data)
        except (RedisError, OSError):
            # A pooled connection may predate a Redis restart: drop the pool and try once more.
            await client.connection_pool.disconnect()
            try:
                await client.publish(key, data)
            except (RedisError, OSError) as exc:
                raise LayerUnavailable(f"Redis unreachable: {exc}") from exc

    async def _publish_many(
        self, items: list[tuple[str, dict]], taken: set[int] | None = None
    ) -> None:
        """PUBLISH each (key, message) in order over one pipelined round trip (no MULTI).

        A connection cut part-way leaves some PUBLISHes taken (their replies read) and the
        rest unknown: the one retry, on a fresh connection, resends only those not
        acknowledged, so no subscriber gets a taken message twice (Pusher clients do not
        deduplicate). If that fails too, `LayerUnavailable.taken` says which items Redis
        acknowledged, so the caller need not send those again.
        """
        from redis.exceptions import RedisError

        if self._resubscribing():
            raise LayerUnavailable("channel layer is resubscribing to Redis; retry later")
        packed = [(key, msgpack.packb(message, use_bin_type=True)) for key, message in items]
        client = self._publisher()
        taken = set() if taken is None else taken
        pending = list(range(len(packed)))
        for attempt in range(2):
            try:
                await self._pipeline_publish(client, packed, pending, taken)
                return
            except (RedisError, OSError) as exc:
                pending = [i for i in pending if i not in taken]
                if attempt:
                    raise LayerUnavailable(f"Redis unreachable: {exc}", taken=taken) from exc
                # A pooled connection may predate a Redis restart: drop the pool, once.
                await client.connection_pool.disconnect()

    @staticmethod
    async def _pipeline_publish(
        client: Any, packed: list[tuple[str, bytes]], indexes: list[int], taken: set[int]
    ) -> None:
        """PUBLISH packed[i] for each i of `indexes` in one write on one connection, adding to
        `taken` each i whose reply was read (redis-py's pipeline reports none of them when the
        connection breaks part-way, and its own retry would resend them all)."""
        from redis.exceptions import ResponseError

        pool = client.connection_pool
        connection = await pool.get_connection()
        try:
            commands = [("PUBLISH", *packed[i]) for i in indexes]
            await connection.send_packed_command(connection.pack_commands(commands))
            failed: ResponseError | None = None
            for i in indexes:
                try:
                    await connection.read_response()
                except ResponseError as exc:  # that one was refused; read the others' replies
                    failed = failed or exc
                    continue
                taken.add(i)
            if failed is not None:
                raise failed
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)

    def _wanted_keys(self) -> set[str]:
        keys = {self._process_key(self.client_id)}
        keys.update(self._group_key(g) for g in self._groups)
        keys.update(self._channel_key(c) for c in self._general)
        return keys

    async def _ensure_reader(self) -> None:
        task = self._reader_task
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and not task.get_loop().is_closed():
            return
        self._healthy = False
        self._ready = asyncio.Event()
        self._reader_task = loop.create_task(self._read_forever(), name="fanout-layer-reader")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=2)
        except TimeoutError:
            logger.warning("channel layer: Redis not reachable yet; will keep retrying")

    async def _subscribe(self, key: str) -> None:
        """SUBSCRIBE and wait for Redis to confirm (so a PUBLISH right after is not missed)."""
        pubsub = self._pubsub
        if not self._healthy or pubsub is None:
            return  # the reader subscribes every wanted key when it (re)connects
        fut = asyncio.get_running_loop().create_future()
        self._pending_subs.setdefault(key, []).append(fut)
        try:
            await pubsub.subscribe(key)
            await asyncio.wait_for(fut, timeout=5)
        except Exception as exc:  # noqa: BLE001 - the reader's reconnect resubscribes
            logger.warning("channel layer: subscribe %s deferred to reconnect (%s)", key, exc)
        finally:
            waiting = self._pending_subs.get(key)
            if waiting and fut in waiting:
                waiting.remove(fut)

    async def _unsubscribe(self, group: str) -> None:
        if group in self._groups:
            return  # someone joined again meanwhile
        key = self._group_key(group)
        pubsub = self._pubsub
        if not self._healthy or pubsub is None:
            return
        try:
            await pubsub.unsubscribe(key)
        except Exception as exc:  # noqa: BLE001 - a dropped connection unsubscribes anyway
            logger.info("channel layer: unsubscribe %s skipped (%s)", key, exc)

    async def _read_forever(self) -> None:
        """Own the subscription connection: (re)subscribe, read, fan out; reconnect on failure."""
        delay = 0.05
        restored = 0  # subscriptions established so far by this reader
        while True:
            # No retries and no redis-py health check on this connection: a failure must reach
            # this loop (which tells the consumers), never be papered over inside redis-py.
            client = connections.async_client(self.host, retries=0, health_check_interval=0)
            pubsub = client.pubsub()
            try:
                held = await self._subscribe_all(pubsub)
                connection = pubsub.connection
                connection.register_connect_callback(self._refuse_reconnect)
                self._pubsub = pubsub
                self._healthy = True
                if restored:
                    self.stats["resubscribes"] += 1
                    notified = self._tell_resubscribed()
                    logger.warning(
                        "channel layer: resubscribed to Redis (%s), %d keys; %d channels told to "
                        "replay what they missed",
                        connections.describe(self.host),
                        len(self._wanted_keys()),
                        notified,
                    )
                restored += 1
                for key, data in held:
                    self._dispatch(key, data)
                if self._ready is not None:
                    self._ready.set()
                delay = 0.05
                await self._pump(pubsub)
            except asyncio.CancelledError:
                self._healthy = False
                await self._close_quietly(pubsub, client)
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                if self._healthy:
                    self.stats["reconnects"] += 1
                    if isinstance(exc, DeadSubscription):
                        self.stats["dead_subscriptions"] += 1
                    logger.warning(
                        "channel layer: lost the Redis subscription (%s: %s); reconnecting",
                        type(exc).__name__,
                        exc,
                    )
                self._healthy = False
                self._pubsub = None
                await self._close_quietly(pubsub, client)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)

    def _refuse_reconnect(self, connection: Any) -> None:
        """A connect callback: redis-py reconnecting the subscription itself would resubscribe
        silently, hiding the gap; refuse, so the reader's loop reconnects and tells."""
        raise DeadSubscription("redis-py reconnected the subscription connection")

    async def _subscribe_all(self, pubsub: Any) -> list[tuple[str, bytes]]:
        """Subscribe every wanted key (the set may grow meanwhile) and wait for Redis to confirm
        each; messages read meanwhile are held back, returned for after the resubscribe notice."""
        held: list[tuple[str, bytes]] = []
        subscribed: set[str] = set()
        deadline = time.monotonic() + 5 + self.health_check_interval
        while True:
            wanted = self._wanted_keys()
            missing, extra = wanted - subscribed, subscribed - wanted
            if not missing and not extra:
                return held
            if missing:
                await asyncio.wait_for(pubsub.subscribe(*missing), self.health_check_interval * 2)
                await self._await_confirmations(pubsub, missing, held, deadline)
            if extra:
                await pubsub.unsubscribe(*extra)
            subscribed = wanted

    async def _await_confirmations(
        self, pubsub: Any, keys: set[str], held: list[tuple[str, bytes]], deadline: float
    ) -> None:
        pending = set(keys)
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadSubscription("Redis did not confirm SUBSCRIBE")
            msg = await pubsub.get_message(timeout=min(remaining, 1.0))
            if msg is None:
                continue
            if msg["type"] == "subscribe":
                pending.discard(msg["channel"].decode())
            elif msg["type"] == "message":
                held.append((msg["channel"].decode(), msg["data"]))

    def _tell_resubscribed(self) -> int:
        """Queue `resubscribed_message` for every local channel in a group (those are the ones
        that may have missed group messages); the count of channels told."""
        loop = asyncio.get_running_loop()
        told = 0
        for channel, inbox in list(self._inboxes.items()):
            if inbox.groups and not inbox.closed:
                self._deliver(channel, inbox, dict(self.resubscribed_message), loop)
                told += 1
        return told

    async def _pump(self, pubsub: Any) -> None:
        """Read and fan out. What Redis has already sent is handled in one turn (up to
        ``READ_BATCH`` messages), so during a burst each consumer wakes once for several events
        (and drains them together) rather than once per event.

        Reads are finite: after ``health_check_interval`` seconds without traffic the reader
        PINGs, and without an answer within as long again the subscription is declared dead.
        """
        get_message = pubsub.get_message
        interval = self.health_check_interval
        clock = asyncio.get_running_loop().time
        last_heard = clock()
        ping_sent: float | None = None
        while True:
            if ping_sent is None and clock() - last_heard >= interval:
                await asyncio.wait_for(pubsub.ping(HEALTH_CHECK_TOKEN), interval)
                ping_sent = clock()
            due = (ping_sent if ping_sent is not None else last_heard) + interval
            msg = await get_message(timeout=max(0.01, due - clock()))
            if msg is None:
                # Judged after a read, so a stalled event loop (whose answer is waiting in the
                # socket) is not mistaken for a dead connection.
                if ping_sent is not None and clock() - ping_sent >= interval:
                    raise DeadSubscription(f"no answer to PING within {interval:g} s")
                continue
            last_heard, ping_sent = clock(), None
            batch = 0
            while msg is not None:
                kind = msg["type"]
                if kind == "message":
                    self._dispatch(msg["channel"].decode(), msg["data"])
                    batch += 1
                elif kind == "subscribe":
                    for fut in self._pending_subs.pop(msg["channel"].decode(), ()):
                        if not fut.done():
                            fut.set_result(None)
                if batch >= self.READ_BATCH:
                    break
                msg = await get_message(timeout=0)
            # Let consumers run before the next batch.
            await asyncio.sleep(0)

    def _dispatch(self, key: str, data: bytes) -> None:
        try:
            message = msgpack.unpackb(data, raw=False)
        except Exception:  # noqa: BLE001 - one bad message must not stop the reader
            logger.exception("channel layer: undecodable message on %s", key)
            return
        kind, _, name = key[len(self.prefix) + 1 :].partition(":")
        if kind == "g":
            if message.get("type") == "notify.event" and isinstance(message.get("id"), int):
                self.last_event_id = message["id"]
                recent = self.recent_event_ids
                recent[message["id"]] = None
                if len(recent) > self.recent_events:
                    del recent[next(iter(recent))]
            self._fan_out(name, message)
            return
        loop = asyncio.get_running_loop()
        channel = message.pop("__asgi_channel__", None) if kind == "p" else name
        if channel is None:
            return
        inbox = self._inboxes.get(channel)
        if inbox is None:
            if kind == "p":
                return  # that channel's consumer is gone
            inbox = self._inbox(channel)
        self._deliver(channel, inbox, message, loop)

    @staticmethod
    async def _close_quietly(pubsub: Any, client: Any) -> None:
        for closer in (pubsub.aclose, client.aclose):
            # already broken, or hung (a paused server): give up on it after a moment
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closer(), 2)


class LocalFanoutChannelLayer(FanoutChannelLayer, InMemoryChannelLayer):
    """The process-local mode as its own class: the embedded default (no REDIS_URL).

    Same fan-out and bounded inboxes as the Redis mode, nothing leaves the process. It is also an
    ``InMemoryChannelLayer`` so that code asking "does this layer only reach this process?" the
    Channels way (``isinstance(layer, InMemoryChannelLayer)``) gets the right answer.
    """

    def __init__(self, hosts: None = None, **kwargs: Any) -> None:
        if hosts:
            raise ValueError("LocalFanoutChannelLayer takes no hosts; use FanoutChannelLayer.")
        super().__init__(hosts=None, **kwargs)


class LayerEventDispatchMixin:
    """Consumer mixin: run the hot-path layer handlers without Channels' per-message overhead.

    Channels' ``AsyncConsumer.dispatch`` awaits ``aclose_old_connections()`` (a thread-pool
    round trip) before every handler; for ``notify.event``, whose handler touches no ORM, that
    hop costs more than the rest of the delivery. And ``await_many_dispatch`` spends a task and
    an ``asyncio.wait`` per message; during a burst the events already queued for this socket are
    handled here in one go instead (at most ``drain_limit``, so client frames still get a turn),
    consecutive ones together through ``notify_events`` (a consumer can send them in one
    write). Other message types keep the dispatch of the class after this one in the MRO.

    With the fan-out layer and realtime.mailbox.ConsumerLoop, events for an idle socket can be
    handled without resuming its task at all (``deliver_now``, the layer's ``set_sink``): a
    consumer opts in by implementing ``write_events``.
    """

    fast_message_types: frozenset[str] = frozenset({"notify.event"})
    drain_limit: int = 64

    async def dispatch(self, message: dict) -> None:
        fast = self.fast_message_types
        if message.get("type") not in fast:
            await super().dispatch(message)  # type: ignore[misc]
            return
        batch = [message]
        receive_nowait = getattr(self.channel_layer, "receive_nowait", None)  # type: ignore[attr-defined]
        if receive_nowait is not None:
            for _ in range(self.drain_limit):
                queued = receive_nowait(self.channel_name)  # type: ignore[attr-defined]
                if queued is None:
                    break
                if queued.get("type") in fast:
                    batch.append(queued)
                    continue
                await self.notify_events(batch)
                batch = []
                await super().dispatch(queued)  # type: ignore[misc]
                # Those awaits let client frames in (an unsubscribe, say): what is still queued
                # waits for the receive loop, which handles them first.
                break
        if batch:
            await self.notify_events(batch)

    async def notify_events(self, messages: list[dict]) -> None:
        """Handle hot-path messages, in order (default: each by its handler)."""
        for message in messages:
            await getattr(self, get_handler_name(message))(message)

    def deliver_now(self, messages: list[dict]) -> bool:
        """ConsumerLoop's synchronous hook: True when every message was handled here and now."""
        fast = self.fast_message_types
        for message in messages:
            if message.get("type") not in fast:
                return False
        return self.write_events(messages)

    def write_events(self, messages: list[dict]) -> bool:
        """Handle events synchronously, writing straight to the server; False (the default:
        not supported) means nothing was done and they take the normal path."""
        return False
