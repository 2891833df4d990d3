"""The fan-out layer behind a real uvicorn server: a client that stops reading is cut off (4408)
while the other sockets of its group keep receiving every event."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from notifications.realtime.layers import FanoutChannelLayer
from tests.liveserver import Uvicorn

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 600
CAPACITY = 100
TEXT = json.dumps({"type": "event", "pad": "x" * 32_000})  # ~19 MB in all: beyond any buffer


@pytest.fixture
def server(redis_url):
    """uvicorn serving a plain group consumer (bench/servers.py) on the fan-out layer."""
    prefix = f"{os.environ.get('CHANNELS_PREFIX', 'test')}.live.{secrets.token_hex(3)}"
    env = dict(
        os.environ,
        BENCH_KIND="shape",
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=prefix,
        BENCH_CAPACITY=str(CAPACITY),
        BENCH_FAST_DISPATCH="1",
    )
    argv = [sys.executable, "-m", "uvicorn", "bench.servers:application", "--host", "127.0.0.1",
            "--port", "{port}", "--log-level", "warning", "--lifespan", "off"]  # fmt: skip
    server = Uvicorn(env, argv=argv)
    server.wait_ready()
    port = server.port
    yield port, prefix, redis_url
    server.stop()


def _stalled_client(port: int) -> socket.socket:
    """A WebSocket client with a tiny receive buffer that reads its welcome, then nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /?tenant=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    sock.settimeout(10)
    data = b""
    while b'"welcome"' not in data:
        data += sock.recv(4096)
    assert b" 101 " in data.split(b"\r\n", 1)[0]
    return sock


def _drain_until_close(sock: socket.socket) -> tuple[int, int | None]:
    """Read everything; (event frames seen, close code). Server frames are unmasked."""
    buf, events, code = b"", 0, None
    sock.settimeout(30)
    buf = b""
    # Skip what is left of the handshake + welcome.
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2:
            length, head = buf[1] & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                length, head = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < head + length:
                break
            opcode, payload = buf[0] & 0x0F, buf[head : head + length]
            buf = buf[head + length :]
            if opcode == 0x1 and b'"event"' in payload:
                events += 1
            elif opcode == 0x8:
                return events, int.from_bytes(payload[:2], "big")
    return events, code


@pytest.mark.live
@pytest.mark.timeout(90)
async def test_a_stalled_client_is_closed_4408_and_the_others_get_everything(server):
    port, prefix, redis_url = server
    slow = await asyncio.to_thread(_stalled_client, port)
    fast = await connect(f"ws://127.0.0.1:{port}/?tenant=1", compression=None, max_size=None)
    assert json.loads(await fast.recv())["type"] == "welcome"
    layer = FanoutChannelLayer(hosts=[redis_url], prefix=prefix)
    got = 0

    async def read_fast() -> None:
        nonlocal got
        while got < EVENTS:
            await fast.recv()
            got += 1

    try:
        reader = asyncio.create_task(read_fast())
        for i in range(EVENTS):
            await layer.group_send("tenant.1", {"type": "notify.event", "id": i, "text": TEXT})
            if i % 50 == 49:
                await asyncio.sleep(0.01)  # a steady stream, not one 19 MB write
        await asyncio.wait_for(reader, 30)
        assert got == EVENTS  # the stalled socket did not hold the others back

        events, code = await asyncio.to_thread(_drain_until_close, slow)
        assert code == 4408
        assert events < EVENTS
        # The fast socket is still open and still served.
        await layer.group_send("tenant.1", {"type": "notify.event", "id": -1, "text": TEXT})
        assert json.loads(await asyncio.wait_for(fast.recv(), 5))["type"] == "event"
    finally:
        slow.close()
        await fast.close()
        await layer.close()
