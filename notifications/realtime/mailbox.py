"""The consumers' receive loop: one wake-up per message instead of a task and an `asyncio.wait`.

Channels' `AsyncConsumer.__call__` runs `await_many_dispatch([receive, channel_receive])`: for
every message it creates a new task for the next receive and runs an `asyncio.wait` over both
(futures, callbacks and a set per call). At 10,000 sockets that machinery was 27% of the server's
CPU during fan-out and most of the young garbage behind its GC pauses (issue 16).

`ConsumerLoop` replaces only that loop and keeps the consumer a Channels consumer: same
`scope`, `channel_layer`, `channel_name`, `channel_receive`, `base_send`, `dispatch` by message
type, `StopConsumer`, and messages handled one at a time in arrival order. Client messages come
through one long-lived reader task (which also counts frames on arrival, see
limits.ArrivalLimit); layer messages are taken straight from the layer: with the fan-out layer
(`receive_into`), the delivery completes the one future the consumer waits on, so an event costs
one future and one task step per socket. Other layers get a pending `receive()` task, reused
until it delivers.

Cheaper still, for a socket that is idle (waiting, no client frame pending, no handler
running): a consumer that implements `deliver_now` is the layer's sink (`set_sink`), and the
delivery calls it synchronously, in the layer's one wake-up handle for all sockets, without
completing the future or resuming the task. It handles the messages there (True) or declines
(False: the future path as above, nothing done). Order holds because it only runs when the
loop has nothing else in hand, and a client frame that arrived first has completed the future.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

_CLIENT = object()  # "a client message is waiting" (the wake-up carries no layer message)


class SocketFreezer:
    """After a burst of handshakes settles, take the sockets' long-lived objects out of the GC.

    Each socket holds a few hundred GC-tracked objects for its whole life (consumer, tasks,
    scope, the server's protocol objects). A full collection walks all of them: at 10,000
    sockets one held the event loop 1.7 s (issue 16), and each event's short-lived objects
    (a wake-up and a future per socket) push survivors towards one. Once no socket has opened
    for `settle` seconds, one collection clears the garbage and `gc.freeze()` moves the
    survivors to the permanent generation, which collections skip. Frozen objects are still
    freed by reference counting; only cycles among them wait: when more sockets have closed
    since the freeze than half of those frozen, `gc.unfreeze()` lets one collection reclaim
    them before freezing again. CPython has one permanent generation, so that thaw includes
    what config.asgi.tune_gc froze at start-up: the collection walks it once and the freeze
    right after (same step, nothing runs between) puts it back. Never thawing would avoid that
    walk but keep every closed socket's cycles forever. Off unless the server enables it.
    """

    enabled = False
    settle = 1.0  # seconds without a new socket before freezing
    min_sockets = 100  # fewer new sockets than this: not worth a collection

    def __init__(self) -> None:
        self.opened_since = 0  # sockets opened since the last freeze
        self.closed_since = 0  # sockets closed since the last freeze
        self.frozen = 0  # sockets open at the last freeze
        self.open = 0
        self.last_open = 0.0
        self.armed = False

    def socket_opened(self, loop: asyncio.AbstractEventLoop) -> None:
        self.open += 1
        if not self.enabled:
            return
        self.opened_since += 1
        self.last_open = loop.time()
        self._arm(loop)

    def socket_closed(self, loop: asyncio.AbstractEventLoop) -> None:
        self.open -= 1
        if not self.enabled:
            return
        self.closed_since += 1
        if self.closed_since > max(self.min_sockets, self.frozen // 2):
            self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.armed:
            self.armed = True
            loop.call_later(self.settle, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self.armed = False
        quiet = loop.time() - self.last_open
        if quiet < self.settle:
            self.armed = True
            loop.call_later(self.settle - quiet, self._check, loop)
            return
        churned = self.closed_since > max(self.min_sockets, self.frozen // 2)
        if self.opened_since < self.min_sockets and not churned:
            return
        if churned:
            gc.unfreeze()  # the closed sockets' cycles become collectable again
            gc.collect()
        else:
            gc.collect(1)  # the young garbage; the old generation's is rare and small
        gc.freeze()
        logger.debug("froze %d objects (%d sockets)", gc.get_freeze_count(), self.open)
        self.frozen, self.opened_since, self.closed_since = self.open, 0, 0


freezer = SocketFreezer()


class ConsumerLoop:
    """Consumer mixin (before `AsyncConsumer` in the MRO): the lean receive loop.

    `dispatch` calls the handler without Channels' `aclose_old_connections()` first (a hop to
    the database thread per message: per handshake, client frame and layer message). The
    consumers that use this reach the ORM only through `database_sync_to_async`, which closes
    stale connections itself, in that thread, before and after each call.
    """

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def deliver_now(self, messages: list[dict]) -> bool:
        """Handle layer messages synchronously while the loop is idle (module docstring);
        False: nothing done, they are dispatched as usual. The default never does."""
        return False

    async def _on_arrival(self, message: dict) -> bool:
        """Called by the reader as each client message arrives; False drops it."""
        return True

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.scope = scope
        self.channel_layer = layer = get_channel_layer(self.channel_layer_alias)  # type: ignore[attr-defined]
        self.base_send = send
        name = None
        if layer is not None:
            name = self.channel_name = await layer.new_channel()
            self.channel_receive = functools.partial(layer.receive, name)
        loop = asyncio.get_running_loop()
        client: list[dict] = []  # (a list: a deque is 600 bytes per socket, this holds 0-2)
        waiting: list[asyncio.Future | None] = [None]

        def arrived(message: dict) -> None:
            client.append(message)
            fut = waiting[0]
            if fut is not None and not fut.done():
                fut.set_result(_CLIENT)

        set_sink = getattr(layer, "set_sink", None)
        if set_sink is not None and type(self).deliver_now is not ConsumerLoop.deliver_now:
            deliver_now = self.deliver_now

            def sink(messages: list[dict]) -> bool:
                fut = waiting[0]
                if fut is None or fut.done() or client:
                    return False  # busy, or a client frame comes first
                return deliver_now(messages)

            set_sink(name, sink)
        reader = loop.create_task(self._read_client(receive, arrived))
        freezer.socket_opened(loop)
        receive_into = getattr(layer, "receive_into", None)
        receive_nowait = getattr(layer, "receive_nowait", None)
        pending: asyncio.Task | None = None  # other layers: the receive() in flight
        dispatch = self.dispatch  # type: ignore[attr-defined]
        try:
            while True:
                while client:
                    await dispatch(client.pop(0))
                if layer is None:
                    message = None
                elif receive_nowait is not None:
                    message = receive_nowait(name)
                else:
                    message = None
                if message is None:
                    fut = waiting[0] = loop.create_future()
                    # While a receive() is in flight it stays the one waiter on the inbox: a
                    # second one (receive_into) would take messages out of order.
                    direct = (
                        pending is None and receive_into is not None and receive_into(name, fut)
                    )
                    if layer is not None and not direct:
                        if pending is None:
                            pending = asyncio.ensure_future(layer.receive(name))
                        pending.add_done_callback(functools.partial(_relay, fut))
                    message = await fut
                    waiting[0] = None
                    if message is _CLIENT:
                        continue
                    if isinstance(message, _Done):
                        pending = None
                        message = message.task.result()
                    # One turn of the loop first: a client frame that arrived together with this
                    # message (its reader not yet run) is handled before it, as Channels' loop
                    # does (an unsubscribe sent before an event stops that event). The fan-out
                    # layer's `receive_into` already completes `fut` a turn late: no second
                    # task step per socket per event.
                    if not direct:
                        await asyncio.sleep(0)
                    while client:
                        await dispatch(client.pop(0))
                await dispatch(message)
        except StopConsumer:
            pass
        finally:
            freezer.socket_closed(loop)
            reader.cancel()
            if pending is not None:
                pending.cancel()
            fut = waiting[0]
            if fut is not None and not fut.done():
                fut.cancel()
            if set_sink is not None and name is not None:
                set_sink(name, None)  # an inbox still in a group must not keep this consumer
            release = getattr(layer, "release", None)
            if release is not None and name is not None:
                release(name)

    async def _read_client(self, receive: Any, arrived: Any) -> None:
        """Move the server's messages to the loop as they arrive (counted on arrival)."""
        try:
            while True:
                message = await receive()
                if not await self._on_arrival(message):
                    continue
                arrived(message)
                if message.get("type") == "websocket.disconnect":
                    return
        except Exception:  # the server's receive failed: end the consumer, never hang it
            logger.warning("socket reader failed", exc_info=True)
            arrived({"type": "websocket.disconnect", "code": 1011})


class _Done:
    """A generic layer's receive() finished (its result, or its exception, is in `task`)."""

    __slots__ = ("task",)

    def __init__(self, task: asyncio.Task) -> None:
        self.task = task


def _relay(fut: asyncio.Future, task: asyncio.Task) -> None:
    if not fut.done() and not task.cancelled():
        fut.set_result(_Done(task))
