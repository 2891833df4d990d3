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

The extension also offers `write(frames) -> bool`: the same bytes written synchronously, from
outside the app's task (the channel layer's direct delivery to an idle socket, issue 16). It
writes only when the fast path would, and the transport is not paused or closing; otherwise
it writes nothing and says False, and the caller takes the `send` path above.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from config.wsframes import SEND_FRAME


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that also writes pre-encoded frames."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
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
