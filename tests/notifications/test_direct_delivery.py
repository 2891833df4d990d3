"""Direct delivery (issue 16): an idle socket's events written from the layer's wake-up, with
the same filters and order as the consumer's own path, and one write per socket per burst.

The real ASGI stack through Channels' communicator; the server's synchronous write
(config.wsprotocol `write_frames`, offered in the `websocket.send_frame` extension) is a
`Wire` here, which records what it wrote and can decline like a paused transport. The
consumer's normal path (its task's `send`) is recorded on the same wire, so the tests see
the order a client would.
"""

from __future__ import annotations

import asyncio
import json
import types

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from config.asgi import application
from config.wsframes import SEND_FRAME, encode_text_frame
from tests.notifications.wsutil import (
    ORIGIN,
    PATH,
    committed_db,
    event_message,
    group_send,
    session_cookie,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


def frame_texts(data: bytes) -> list[str]:
    """The texts of unmasked, unfragmented server text frames, in order."""
    texts, at = [], 0
    while at < len(data):
        assert data[at] == 0x81  # FIN + text
        length, at = data[at + 1] & 0x7F, at + 2
        if length in (126, 127):
            size = 2 if length == 126 else 8
            length, at = int.from_bytes(data[at : at + size], "big"), at + size
        texts.append(data[at : at + length].decode())
        at += length
    return texts


class Wire:
    """What the client receives, and by which path: ("direct"|"send", text) in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.writes = 0  # direct writes (each one transport write on the real server)
        self.sends = 0  # messages the consumer's task sent (each one write on the real server)
        self.open = True  # False: declines, as FrameProtocol does while paused

    def write(self, frames: bytes) -> bool:
        if not self.open:
            return False
        self.writes += 1
        self.log.extend(("direct", text) for text in frame_texts(frames))
        return True

    def sent(self, message: dict) -> None:
        self.sends += 1
        if message["type"] == SEND_FRAME:
            texts = message.get("texts") or [message["text"]]
            assert message["frame"] == b"".join(encode_text_frame(t) for t in texts)
            self.log.extend(("send", text) for text in texts)
        else:
            self.log.append(("send", message["text"]))

    def texts(self) -> list[str]:
        return [text for _, text in self.log]

    async def wait_for(self, count: int) -> None:
        for _ in range(2000):  # up to 20 s on a busy machine
            if len(self.log) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.log)} frames of {count}: {self.log}")


def wired(wire: Wire, *, offered: bool):
    """The ASGI app with its data frames recorded on `wire` (accept and close pass through)."""

    async def app(scope, receive, send):
        scope = dict(scope)
        if offered:
            scope["extensions"] = {SEND_FRAME: {"write": wire.write}}

        async def record(message):
            if message["type"] in (SEND_FRAME, "websocket.send"):
                wire.sent(message)
            else:
                await send(message)

        await application(scope, receive, record)

    return app


async def connected(user, wire: Wire, *, offered: bool) -> WebsocketCommunicator:
    """`user`'s socket, connected, its frames recorded on `wire`."""
    cookie = await session_cookie(user)
    headers = [
        (b"origin", ORIGIN.encode()),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    comm = WebsocketCommunicator(wired(wire, offered=offered), PATH, headers=headers)
    assert (await comm.connect(timeout=5))[0]
    await wire.wait_for(1)
    return comm


async def open_socket(user, *, offered: bool = True) -> tuple[WebsocketCommunicator, Wire]:
    wire = Wire()
    comm = await connected(user, wire, offered=offered)
    assert '"welcome"' in wire.log[0][1]
    # Once the pong is out, connect() has finished and the socket waits, idle.
    await comm.send_json_to({"action": "ping"})
    await wire.wait_for(2)
    assert wire.log[1][1] == '{"type":"pong"}'
    wire.log.clear()
    wire.sends = 0
    return comm, wire


def one_turn() -> bool:
    """Whether messages sent back to back reach the socket in one turn (one wake-up): always
    in the process-local layer; over Redis they may come in more than one read."""
    return not get_channel_layer().is_redis


async def settle() -> None:
    """Let the consumer go back to waiting (a few loop turns; no timing involved)."""
    for _ in range(20):
        await asyncio.sleep(0)


def texts_of(*messages: dict) -> list[str]:
    return [m["text"] for m in messages]


async def test_an_idle_socket_gets_events_directly_in_order_one_write_per_burst(staff):
    comm, wire = await open_socket(staff)
    group = f"tenant.{staff.tenant_id}"
    burst = [event_message(group, n) for n in range(1, 6)]
    for message in burst:  # one turn: the socket's wake-up carries all five
        await group_send(group, message)
    await wire.wait_for(5)
    assert wire.log == [("direct", t) for t in texts_of(*burst)]
    assert wire.writes == 1 or not one_turn()
    single = event_message(group, 6)
    await group_send(group, single)
    await wire.wait_for(6)
    assert wire.log[-1] == ("direct", single["text"])
    await comm.send_json_to({"action": "ping"})  # the socket's own frames still work
    await wire.wait_for(7)
    assert wire.log[-1] == ("send", '{"type":"pong"}')
    await comm.disconnect()


async def test_the_audience_filter_and_the_user_group_apply_on_the_direct_path(staff):
    comm, wire = await open_socket(staff)
    group = f"tenant.{staff.tenant_id}"
    admins_only = event_message(group, 1, roles=["tenant_admin"])
    for_all = event_message(group, 2)
    for_user = event_message(f"user.{staff.pk}", 3)
    for message in (admins_only, for_all):
        await group_send(group, message)
    await group_send(f"user.{staff.pk}", for_user)
    await wire.wait_for(2)
    await settle()
    assert wire.log == [("direct", for_all["text"]), ("direct", for_user["text"])]
    await comm.disconnect()


@pytest.mark.parametrize("offered", [True, False], ids=["direct", "daphne"])
async def test_an_unsubscribe_sent_before_an_event_stops_it(staff, offered):
    comm, wire = await open_socket(staff, offered=offered)
    group = f"tenant.{staff.tenant_id}"
    await comm.send_json_to({"action": "unsubscribe", "channel": group})
    await group_send(group, event_message(group, 1))  # right behind it, reply not awaited
    await group_send(f"user.{staff.pk}", event_message(f"user.{staff.pk}", 2))
    await wire.wait_for(2)
    await settle()
    assert [json.loads(text) for _, text in wire.log] == [
        {"type": "unsubscribed", "channel": group},
        json.loads(event_message(f"user.{staff.pk}", 2)["text"]),
    ]
    await comm.disconnect()


async def test_a_paused_socket_falls_back_and_still_gets_everything_in_order(staff):
    comm, wire = await open_socket(staff)
    group = f"tenant.{staff.tenant_id}"
    events = [event_message(group, n) for n in range(1, 10)]
    await group_send(group, events[0])
    await wire.wait_for(1)
    wire.open = False  # the transport is paused: the direct write declines
    for message in events[1:4]:
        await group_send(group, message)
    await wire.wait_for(4)
    for message in events[4:6]:
        await group_send(group, message)
    await wire.wait_for(6)
    wire.open = True
    await settle()
    for message in events[6:]:
        await group_send(group, message)
    await wire.wait_for(9)
    await settle()
    assert wire.texts() == texts_of(*events)
    paths = [path for path, _ in wire.log]
    assert paths == ["direct"] + ["send"] * 5 + ["direct"] * 3
    assert (
        wire.sends == 2 or not one_turn()
    )  # each burst queued behind the paused write: one message of frames
    await comm.disconnect()


async def test_without_the_servers_write_each_event_is_its_own_websocket_send(staff):
    """daphne and the test communicator: `websocket.send` per event, in order, as before."""
    wire = Wire()
    sent: list[dict] = []
    original = wire.sent
    wire.sent = lambda message: (sent.append(message), original(message))  # type: ignore[method-assign]
    comm = await connected(staff, wire, offered=False)
    await settle()
    group = f"tenant.{staff.tenant_id}"
    burst = [event_message(group, n) for n in range(1, 4)]
    for message in burst:
        await group_send(group, message)
    await wire.wait_for(4)
    assert sent[1:] == [{"type": "websocket.send", "text": t} for t in texts_of(*burst)]
    assert wire.writes == 0
    await comm.disconnect()


async def test_events_waiting_for_a_paused_transport_are_dropped_if_the_socket_closes_meanwhile():
    """A slow reader's transport is paused; its rights end (a revocation's close sets `_closed`
    outside the consumer's task) before it drains: the events filtered before the pause must
    not be written after it."""
    from notifications.realtime.consumers import NotificationConsumer

    consumer = NotificationConsumer()
    consumer._closed = False
    consumer.role, consumer.socket_id, consumer.muted = "staff", "s1", set()
    writable = asyncio.Event()  # cleared: paused
    consumer._writable = writable
    consumer.send_frames = True
    consumer.meter = types.SimpleNamespace(frames=types.SimpleNamespace(n=0))
    sent: list[dict] = []

    async def base_send(message):
        sent.append(message)

    consumer.base_send = base_send
    group = "tenant.1"
    task = asyncio.ensure_future(
        consumer.notify_events([event_message(group, 1), event_message(group, 2)])
    )
    await settle()
    assert not task.done() and sent == []  # waiting for the transport
    consumer._closed = True  # revoked while paused
    writable.set()
    await task
    assert sent == []

    consumer._closed = False  # and an open socket gets them once the transport resumes
    writable.clear()
    task = asyncio.ensure_future(consumer.notify_events([event_message(group, 3)]))
    await settle()
    writable.set()
    await task
    assert [m.get("text") for m in sent] == [event_message(group, 3)["text"]]
    assert consumer.meter.frames.n == 1
