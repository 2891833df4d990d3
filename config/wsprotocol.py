"""uvicorn's `websockets-sansio` WebSocket protocol plus the `websocket.send_frame` ASGI extension.

The production command names it: `uvicorn --ws config.wsprotocol:FrameProtocol` (uvicorn's
`--ws` takes an import string as well as a name; docs/deployment.md). Everything else is
uvicorn's own: handshake, reading, pings, close handshake, back-pressure.

`websocket.send_frame` (config.wsframes) carries a server frame already encoded once for every
socket of an event; this protocol writes those bytes to its transport as they are instead of
encoding the text again per socket. It is offered in scope["extensions"] only on connections
that negotiated no WebSocket extension (a permessage-deflate connection must compress per
socket). Whenever the bytes cannot be written as they are (handshake not complete, close sent or
received, an extension after all) the message is handled as `websocket.send` of its "text", so
every state behaves exactly like uvicorn's. Like uvicorn's send it waits while the transport is
paused (the consumer's inbox fills meanwhile: the channel layer's 4408 "too slow" close). A
message of several frames (config.wsframes.send_frames_message) is one write; its fallback sends
each of its "texts" in order.

Per socket it also holds less (issue 16: ≤ 32 KiB a socket at 10,000): the handshake's request
and response go once the socket is accepted (uvicorn keeps both for the connection's life, a
few KiB of headers), and the receive queue and the writable flag are a list and a flag with
one waiter (`_Inbox`, `_Flag`) where asyncio's Queue is four deques and its Event one (~760
bytes each, empty). They keep the only methods uvicorn and the consumer call.

The extension also offers `write(frames) -> bool`: the same bytes written synchronously, from
outside the app's task (the channel layer's direct delivery to an idle socket, issue 16). It
writes only when the fast path would, and the transport is not paused or closing; otherwise
it writes nothing and says False, and the caller takes the `send` path above.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from config.wsframes import SEND_FRAME


class _Waiters:
    """A list of futures made on demand: nothing allocated while nobody waits."""

    __slots__ = ("loop", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: list[asyncio.Future] | None = None

    def _wake(self) -> None:
        waiters, self.waiters = self.waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self.loop.create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        try:
            await waiter
        finally:
            if self.waiters is not None and waiter in self.waiters:
                self.waiters.remove(waiter)


class _Inbox(_Waiters):
    """The socket's received messages, as uvicorn's protocol uses an asyncio.Queue (unbounded:
    `put_nowait`, `get`, `empty`), without its four deques. Read from a head index (one read
    can bring thousands of small frames: popping each from the front would be quadratic)."""

    __slots__ = ("head", "items")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.items: list[Any] = []
        self.head = 0

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        self._wake()

    async def get(self) -> Any:
        while self.head >= len(self.items):
            await self._wait()
        items, head = self.items, self.head
        item, items[head] = items[head], None
        head += 1
        if head == len(items):  # drained: start again from an empty list
            self.items, head = [], 0
        elif head >= 64 and head * 2 >= len(items):  # (a long backlog: drop what was read)
            del items[:head]
            head = 0
        self.head = head
        return item

    def empty(self) -> bool:
        return self.head >= len(self.items)

    def qsize(self) -> int:
        return len(self.items) - self.head


class _Flag(_Waiters):
    """asyncio.Event's `set`, `clear`, `is_set` and `wait`, without its deque (and, like it,
    a waiter woken by `set` returns even if `clear` came before it ran)."""

    __slots__ = ("value",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.value = False

    def is_set(self) -> bool:
        return self.value

    def set(self) -> None:
        if not self.value:
            self.value = True
            self._wake()

    def clear(self) -> None:
        self.value = False

    async def wait(self) -> bool:
        if not self.value:
            await self._wait()  # (only `set` completes it)
        return True


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that also writes pre-encoded frames."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox(self.loop)  # type: ignore[assignment]
        self.writable = _Flag(self.loop)  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        self.request = None  # (uvicorn only keeps it)
        # The app's task is created but has not run yet: the scope can still gain the extension.
        if self.response.status_code == 101 and not self.conn.extensions:
            self.scope["extensions"][SEND_FRAME] = {
                "write": self.write_frames,
                "writable": self.writable,
            }

    def _frames_go_as_they_are(self) -> bool:
        conn = self.conn
        return not (
            not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
            or conn.state is not State.OPEN
            or conn.extensions
        )

    def write_frames(self, frames: bytes) -> bool:
        """Write pre-encoded frames now if `send` would write them as they are without waiting;
        False (nothing written) when paused, disconnected, closing or not plainly open."""
        if (
            not self.writable.is_set()
            or self.disconnected
            or self.transport.is_closing()
            or not self._frames_go_as_they_are()
        ):
            return False
        self.transport.write(frames)
        return True

    async def send(self, message: Any) -> None:
        if message["type"] != SEND_FRAME:
            await super().send(message)
            if self.handshake_complete:  # (accepted or refused: the response went)
                self.response = None
            return
        if not self.writable.is_set():
            await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self._frames_go_as_they_are():
            texts = message.get("texts") or (message["text"],)
            for text in texts:
                await super().send({"type": "websocket.send", "text": text})
            return
        self.transport.write(message["frame"])
