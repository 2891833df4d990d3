"""config.wsprotocol.FrameProtocol: uvicorn's sans-I/O protocol writing pre-encoded frames.

A real uvicorn server (in this process, `--ws config.wsprotocol:FrameProtocol`) and real
`websockets` clients. The app hands the server a frame whose bytes say "fast" and whose text
says "slow": which one the client reads tells which path the server took.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
import uvicorn
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.server import ServerState
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from config.wsframes import SEND_FRAME, encode_text_frame, send_frames_message
from config.wsprotocol import FrameProtocol
from tests.liveserver import free_port

FAST = {"type": SEND_FRAME, "frame": encode_text_frame("fast"), "text": "slow"}
seen: dict[str, object] = {}


async def app(scope, receive, send):
    """Says whether the extension was offered, sends FAST, then echoes what it is told."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(SEND_FRAME in scope["extensions"])})
    await send(FAST)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        if message["text"] == "many":  # several frames in one message, then one more
            await send(send_frames_message(["one", "two", "three"]))
            await send({"type": "websocket.send", "text": "four"})
        if message["text"] == "ordered":  # both kinds of send, interleaved
            for n in range(50):
                if n % 2:
                    await send({"type": "websocket.send", "text": str(n)})
                else:
                    text = str(n)
                    await send({"type": SEND_FRAME, "frame": encode_text_frame(text), "text": text})
    for kind in ("websocket.send", SEND_FRAME):  # after the peer closed
        message = {"type": kind, "text": "late"} if kind == "websocket.send" else dict(FAST)
        try:
            await send(message)
        except Exception as exc:  # noqa: BLE001 - what each kind raises is the finding
            seen[kind] = type(exc)
        else:
            seen[kind] = None


@contextlib.asynccontextmanager
async def serving(*, deflate: bool):
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=FrameProtocol, lifespan="off",
        log_level="warning", ws_per_message_deflate=deflate,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


async def test_a_client_without_extensions_gets_the_frame_bytes_as_they_are():
    async with serving(deflate=False) as url, connect(url, compression=None) as ws:
        assert json.loads(await ws.recv()) is True  # offered
        assert await ws.recv() == "fast"


async def test_a_deflate_connection_is_not_offered_the_extension_and_gets_the_text():
    """permessage-deflate compresses per socket: shared bytes would be a corrupt frame."""
    async with serving(deflate=True) as url, connect(url, compression="deflate") as ws:
        assert ws.protocol.extensions  # negotiated
        assert json.loads(await ws.recv()) is False
        assert await ws.recv() == "slow"  # the app sent FAST anyway: written as its text


async def test_the_server_without_deflate_serves_a_client_that_offers_it_uncompressed():
    async with serving(deflate=False) as url, connect(url, compression="deflate") as ws:
        assert not ws.protocol.extensions
        assert json.loads(await ws.recv()) is True
        assert await ws.recv() == "fast"


async def test_frames_keep_their_order_across_both_kinds_of_send():
    async with serving(deflate=False) as url, connect(url, compression=None) as ws:
        await ws.recv(), await ws.recv()
        await ws.send("ordered")
        assert [await ws.recv() for _ in range(50)] == [str(n) for n in range(50)]


@pytest.mark.parametrize("deflate", [False, True], ids=["frames", "fallback"])
async def test_a_message_of_several_frames_arrives_as_each_text_in_order(deflate):
    """One write on the fast path; the fallback (a compressing connection) sends each text."""
    compression = "deflate" if deflate else None
    async with serving(deflate=deflate) as url, connect(url, compression=compression) as ws:
        await ws.recv(), await ws.recv()
        await ws.send("many")
        assert [await ws.recv() for _ in range(4)] == ["one", "two", "three", "four"]


async def test_after_the_peer_closes_a_frame_send_fails_as_a_text_send_does():
    seen.clear()
    async with serving(deflate=False) as url:
        async with connect(url, compression=None) as ws:
            await ws.recv(), await ws.recv()
        for _ in range(400):  # up to 20 s on a loaded machine
            if len(seen) == 2:
                break
            await asyncio.sleep(0.05)
    assert seen == {"websocket.send": ClientDisconnected, SEND_FRAME: ClientDisconnected}


class Transport(asyncio.Transport):
    """Records writes; the protocol's transport without a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def handshake(asgi_app) -> tuple[FrameProtocol, Transport]:
    """A FrameProtocol on a recording transport, the client's handshake fed in (the app runs
    on the current loop)."""
    config = uvicorn.Config(asgi_app, ws=FrameProtocol, lifespan="off", log_level="warning")
    proto = FrameProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = Transport()
    proto.connection_made(transport)
    proto.data_received(HANDSHAKE)
    return proto, transport


async def test_a_paused_transport_holds_frames_until_it_drains():
    """Back-pressure as uvicorn's own send: nothing is written while the transport is paused."""
    accepted, go, sent = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def sender(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        await go.wait()
        await send(FAST)
        sent.set()
        await receive()

    proto, transport = handshake(sender)
    await asyncio.wait_for(accepted.wait(), 5)
    assert b" 101 " in transport.written[0]
    proto.pause_writing()
    go.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert transport.written[1:] == [] and not sent.is_set()
    proto.resume_writing()
    await asyncio.wait_for(sent.wait(), 5)
    assert transport.written[1:] == [FAST["frame"]]
    proto.connection_lost(None)
    await asyncio.sleep(0)


@pytest.mark.parametrize("deflate", [False, True])
def test_the_cli_accepts_the_protocol_by_import_string(deflate):
    """The production command names it with `--ws` (uvicorn resolves an import string)."""
    config = uvicorn.Config(
        app, ws="config.wsprotocol:FrameProtocol", ws_per_message_deflate=deflate
    )
    config.load()
    assert config.ws_protocol_class is FrameProtocol


async def test_the_synchronous_write_writes_only_what_send_would_write_as_it_is():
    """The extension's `write` (direct delivery): bytes written at once while the socket is
    plainly open; nothing written, and False, while paused, once closing or disconnected."""
    accepted, close = asyncio.Event(), asyncio.Event()
    offered: dict = {}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        offered.update(scope["extensions"][SEND_FRAME])
        accepted.set()
        await close.wait()
        await send({"type": "websocket.close", "code": 1000})
        await receive()

    proto, transport = handshake(app)
    await asyncio.wait_for(accepted.wait(), 5)
    write = offered["write"]
    frames = encode_text_frame("a") + encode_text_frame("b")
    assert write(frames) is True
    assert transport.written[1:] == [frames]
    proto.pause_writing()
    assert write(frames) is False
    proto.resume_writing()
    assert write(frames) is True
    close.set()
    for _ in range(400):
        if proto.close_sent:
            break
        await asyncio.sleep(0.01)
    written = len(transport.written)
    assert write(frames) is False
    proto.connection_lost(None)
    assert write(frames) is False
    assert len(transport.written) == written
    await asyncio.sleep(0)


def client_text(text: str) -> bytes:
    """A client's text frame (masked, as every client frame must be)."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=True, extensions=[])


async def test_an_accepted_socket_keeps_neither_its_handshake_request_nor_its_response():
    """uvicorn keeps both for the connection's life (a few KiB of headers a socket, issue 16):
    here they go once the accept is written, and the client still got the whole 101."""
    accepted = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-served-by", b"test")]})
        accepted.set()
        await receive()

    proto, transport = handshake(app)
    await asyncio.wait_for(accepted.wait(), 5)
    response = transport.written[0]
    assert b" 101 " in response
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in response
    assert b"x-served-by: test" in response
    assert proto.request is None and proto.response is None
    proto.connection_lost(None)
    await asyncio.sleep(0)


async def test_a_refused_socket_is_still_answered_403():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.close", "code": 4403})

    proto, transport = handshake(app)
    for _ in range(400):
        if transport.written:
            break
        await asyncio.sleep(0.01)
    assert transport.written[0].startswith(b"HTTP/1.1 403 ")
    assert transport.closing
    assert proto.request is None and proto.response is None  # (nothing kept of the handshake)


async def test_what_a_socket_receives_reaches_the_app_in_order_one_at_a_time_or_together():
    """The receive queue (a list and one waiter, not asyncio's four deques): a waiting receive
    wakes for the next message; thousands of small frames in one read (uvicorn pauses reading
    only after it) are each read once, in order, and the queue is empty after the last."""
    got: list[str] = []
    done = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while len(got) < 5000:
            got.append((await receive())["text"])
        done.set()
        await receive()

    proto, transport = handshake(app)
    for _ in range(400):
        if transport.written:
            break
        await asyncio.sleep(0.01)
    proto.data_received(client_text("0"))
    for _ in range(400):  # the app has it and waits again
        if got == ["0"] and proto.queue.waiters:
            break
        await asyncio.sleep(0.01)
    proto.data_received(b"".join(client_text(str(n)) for n in range(1, 5000)))
    await asyncio.wait_for(done.wait(), 5)
    assert got == [str(n) for n in range(5000)]
    assert proto.queue.empty() and proto.queue.qsize() == 0
    proto.connection_lost(None)
    await asyncio.sleep(0)


async def test_a_receive_cut_short_loses_no_message_and_leaves_no_waiter():
    async def app(scope, receive, send):
        await receive()

    proto, _ = handshake(app)
    inbox = proto.queue
    await asyncio.sleep(0)  # (the app took "websocket.connect")
    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert inbox.waiters in (None, [])
    inbox.put_nowait({"type": "websocket.receive", "text": "kept"})
    assert await asyncio.wait_for(inbox.get(), 5) == {"type": "websocket.receive", "text": "kept"}
    assert inbox.empty()


async def test_the_writable_flag_wakes_every_waiter_once_set_and_holds_them_while_clear():
    """What uvicorn's back-pressure and the consumer wait on (asyncio.Event's semantics)."""
    proto, _ = handshake(lambda scope, receive, send: receive())
    flag = proto.writable
    assert flag.is_set() and await asyncio.wait_for(flag.wait(), 5) is True
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    cut = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    cut.cancel()
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 5) == [True, True, True]
    assert cut.cancelled() and flag.waiters is None


async def test_a_flag_waiter_woken_by_set_returns_though_clear_came_before_it_ran():
    """asyncio.Event's rule, which uvicorn's back-pressure was written against."""
    proto, _ = handshake(lambda scope, receive, send: receive())
    flag = proto.writable
    flag.clear()
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    flag.set()
    flag.clear()
    assert await asyncio.wait_for(waiter, 5) is True
