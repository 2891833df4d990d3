"""An event's frame on the production server (uvicorn, config.wsprotocol): encoded once, and the
bytes on the wire are exactly the frame of the event's text, for a client without extensions
(the fast path) and for one whose connection compresses (the consumer's `websocket.send`)."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
from websockets.asyncio.client import connect

from config.wsframes import encode_text_frame
from tests.liveserver import Uvicorn, jwt_for, recv_json, run_manage, server_env
from tests.notifications.wsutil import committed_db

pytestmark = [pytest.mark.live, committed_db]


@pytest.fixture(scope="module")
def server(django_db_setup):
    """The production command with permessage-deflate on (uvicorn's default): a client that
    offers it gets compressed frames (the fallback), one that does not the shared frame. Pings
    every second go to the same transport in between (answered when the raw client reads)."""
    extra = ["--ws-per-message-deflate", "true", "--ws-ping-interval", "1"]
    extra += ["--ws-ping-timeout", "600"]
    server = Uvicorn(server_env(redis_url=None), extra=extra)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class RawClient:
    """A WebSocket client that keeps every frame's bytes as they came (server frames: unmasked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pings = 0  # the server's pings answered so far

    @classmethod
    async def open(cls, port: int, token: str) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws/notifications/?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert b" 101 " in head.split(b"\r\n", 1)[0]
        assert b"sec-websocket-extensions" not in head.lower()
        return cls(reader, writer)

    async def frame(self, timeout: float = 10, *, until_ping: bool = False) -> bytes:
        """The next whole data frame, header included (the server's pings are answered);
        `until_ping`: return at the next ping instead (its frame), a data frame first fails."""
        read = self.reader.readexactly
        while True:
            head = await asyncio.wait_for(read(2), timeout)
            length = head[1] & 0x7F
            extra = b""
            if length == 126:
                extra = await read(2)
                length = int.from_bytes(extra, "big")
            elif length == 127:
                extra = await read(8)
                length = int.from_bytes(extra, "big")
            body = await read(length)
            if head[0] & 0x0F != 0x9:
                assert not until_ping, f"a data frame before the ping: {body[:80]!r}"
                return head + extra + body
            mask = os.urandom(4)  # a pong, masked as a client's frames must be
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
            self.writer.write(bytes([0x8A, 0x80 | len(body)]) + mask + masked)
            self.pings += 1
            if until_ping:
                return head + extra + body

    async def close(self) -> None:
        self.writer.close()


def payload(frame: bytes) -> bytes:
    length = frame[1] & 0x7F
    return frame[2 + {126: 2, 127: 8}.get(length, 0) :]


async def fire(message: str) -> None:
    await asyncio.to_thread(
        run_manage, server_env(redis_url=None), "fire_event", "SystemNotification",
        "--tenant", "acme", "--message", message,
    )  # fmt: skip


async def test_an_event_arrives_as_the_frame_of_its_text_fast_path_and_fallback(server, staff):
    token = await jwt_for(staff)
    raw = await RawClient.open(server.port, token)
    async with connect(f"{server.ws}?token={token}", compression="deflate") as compressed:
        assert compressed.protocol.extensions  # negotiated: the consumer's `websocket.send`
        assert json.loads(payload(await raw.frame()))["type"] == "welcome"
        assert (await recv_json(compressed))["type"] == "welcome"

        # A ping (every second) on the same transport first, answered: the event frames
        # after it must still be whole and exact.
        assert (await raw.frame(30, until_ping=True))[0] == 0x89
        assert raw.pings == 1
        long = "é" * 200  # a frame over 125 bytes: the 16-bit length form
        for message in ("short", long):
            await fire(message)
            frame = await raw.frame()
            event = json.loads(payload(frame))
            assert event["type"] == "event" and event["message"] == message
            assert event["channel"] == f"tenant.{staff.tenant_id}"
            text = payload(frame).decode()
            # Byte for byte: FIN + text opcode, no RSV bits, unmasked, the right length form.
            assert frame == encode_text_frame(text)
            assert frame[0] == 0x81
            # The same event text, compressed for this socket alone and decompressed here.
            assert await asyncio.wait_for(compressed.recv(), 10) == text
    await raw.close()


async def test_the_production_command_does_not_compress(django_db_setup, staff):
    """Browsers offer permessage-deflate; the production command declines it (deployment.md)."""
    server = Uvicorn(server_env(redis_url=None))
    try:
        server.wait_ready()
        token = await jwt_for(staff)
        async with connect(f"{server.ws}?token={token}", compression="deflate") as ws:
            assert not ws.protocol.extensions
            assert (await recv_json(ws, timeout=10))["type"] == "welcome"
    finally:
        server.stop()
