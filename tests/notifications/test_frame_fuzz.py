"""Frame fuzzers of every socket endpoint (issue 12): notifications, Pusher and portal sockets.

Each fuzzed frame (tests/notifications/fuzzframes.py: arbitrary JSON, non-JSON text, binary,
deep nesting, huge numbers, unknown actions, wrong types in every field of every action) must
get a documented answer (docs/protocol.md, docs/pusher.md) and leave the socket open: after
each one a ping must still be answered, every answer is of a documented type and error code, no
exception reaches the server (nothing logged with a traceback), and the socket's rights do not
change (no subscription or presence of another tenant's channel; afterwards an event of another
tenant, user or the system admins does not arrive, one of its own still does).

In-process through Channels' communicator (fast: WS_FUZZ_EXAMPLES frames per endpoint, 300 by
default), plus a smaller run against real daphne and uvicorn processes whose logs must hold no
traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from config.asgi import application
from notifications.realtime.groups import SYSTEM_ADMIN_GROUP, tenant_group, user_group
from tests.liveserver import Daphne, Uvicorn, jwt_for, server_env
from tests.notifications import fuzzframes as ff
from tests.notifications.test_portal_consumer import make_payment, portal_socket
from tests.notifications.wsutil import (
    committed_db,
    communicator,
    drain,
    event_message,
    group_send,
    session_cookie,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]

EXAMPLES = int(os.environ.get("WS_FUZZ_EXAMPLES", "300"))
LIVE_EXAMPLES = max(20, EXAMPLES // 5)
PUSHER_KEY = "test-key"


@pytest.fixture
def unlimited(settings):
    """No frame-rate close: the fuzzers send hundreds of frames (the limits have their tests)."""
    settings.NOTIFICATIONS_WS_BURST = 1e9
    settings.NOTIFICATIONS_WS_RATE = 1e9


class Closed(AssertionError):
    pass


Send = Callable[[ff.Frame], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]


async def fuzz(
    frames: list[ff.Frame],
    send: Send,
    receive: Receive,
    *,
    sentinel: str,
    is_pong: Callable[[dict], bool],
    pongs_of: Callable[[ff.Frame], int],
    check: Callable[[dict], None],
) -> list[dict]:
    """Send each frame, then a ping; every answer up to the ping's pong must pass `check`."""
    answers = []
    for frame in frames:
        await send(frame)
        await send(sentinel)
        expected = pongs_of(frame) + 1
        while expected:
            try:
                answer = await receive()
            except Closed as closed:
                raise AssertionError(f"the socket closed ({closed}) after {frame!r:.300}") from None
            try:
                check(answer)
            except AssertionError as error:
                raise AssertionError(f"{error}: {answer!r:.300} for {frame!r:.300}") from None
            expected -= is_pong(answer)
            answers.append(answer)
    return answers


def communicator_io(comm: WebsocketCommunicator) -> tuple[Send, Receive]:
    async def send(frame: ff.Frame) -> None:  # send_to refuses empty frames: a server does not
        key = "bytes" if isinstance(frame, bytes) else "text"
        await comm.send_input({"type": "websocket.receive", key: frame})

    async def receive() -> dict:
        message = await comm.receive_output(timeout=60)  # generous: a loaded machine
        if message["type"] == "websocket.close":
            raise Closed(f"close {message.get('code')}")
        return json.loads(message["text"])

    return send, receive


def websocket_io(ws) -> tuple[Send, Receive]:
    async def send(frame: ff.Frame) -> None:
        await ws.send(frame)

    async def receive() -> dict:
        try:
            return json.loads(await asyncio.wait_for(ws.recv(), 30))
        except ConnectionClosed as closed:
            raise Closed(f"close {closed.rcvd.code if closed.rcvd else None}") from None

    return send, receive


def no_tracebacks(caplog) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad][:5]


# -- /ws/notifications/ -------------------------------------------------------------------------


def notification_check(own: set[str]) -> Callable[[dict], None]:
    def check(answer: dict) -> None:
        kind = answer.get("type")
        assert kind in ff.NOTIFICATION_TYPES, "undocumented frame type"
        if kind == "error":
            assert answer.get("code") in ff.NOTIFICATION_ERRORS, "undocumented error code"
            assert isinstance(answer.get("message"), str)
        if kind in ("subscribed", "unsubscribed", "presence", "event"):
            assert answer["channel"] in own, "a channel this socket may not have"
        if kind == "viewers":
            assert answer["record"].startswith("user.")

    return check


def notification_channels(staff, other_admin, system_admin) -> list[str]:
    return [
        tenant_group(staff.tenant_id),
        user_group(staff.pk),
        tenant_group(other_admin.tenant_id),
        user_group(other_admin.pk),
        user_group(system_admin.pk),
        SYSTEM_ADMIN_GROUP,
        "presence.tenant.1",
        f"session.{'a' * 32}",
        "private-tenant.1",
        "tenant.",
        "tenant.01",
    ]


async def rights_unchanged(send: Send, receive: Receive, own: list[str], others: list[str]):
    """Events of others' groups do not arrive; one of the socket's own still does."""
    for channel in own:
        await send(json.dumps({"action": "subscribe", "channel": channel}))
    for n, group in enumerate(others):
        await group_send(group, event_message(group, 900_000 + n))
    await group_send(own[0], event_message(own[0], 999_999))
    while True:
        frame = await receive()
        if frame["type"] == "event":
            assert frame["id"] == "999999", f"an event of {frame['channel']} arrived"
            return


async def test_fuzzed_frames_on_ws_notifications_get_documented_answers_and_no_rights(
    unlimited, caplog, staff, other_admin, system_admin
):
    caplog.set_level(logging.WARNING)
    channels = notification_channels(staff, other_admin, system_admin)
    frames = ff.sample(ff.notification_frames(channels), EXAMPLES)
    comm = communicator(cookie=await session_cookie(staff))
    connected, _ = await comm.connect(timeout=60)
    assert connected
    welcome = await comm.receive_json_from(timeout=60)
    own = set(welcome["channels"])
    send, receive = communicator_io(comm)
    answers = await fuzz(
        frames,
        send,
        receive,
        sentinel='{"action":"ping"}',
        is_pong=lambda a: a.get("type") == "pong",
        pongs_of=ff.notification_pongs,
        check=notification_check(own),
    )
    for answer in await drain(comm, 0.5):  # replays still running
        notification_check(own)(answer)
    errors = {a["code"] for a in answers if a["type"] == "error"}
    # The run reached the checks of each action, not only the JSON parser.
    assert {"invalid_json", "forbidden", "invalid_field", "unknown_action"} <= errors, errors
    others = [c for c in channels[2:6]]
    await rights_unchanged(send, receive, sorted(own), others)
    await comm.disconnect()
    no_tracebacks(caplog)


# -- Pusher /app/<key> --------------------------------------------------------------------------


def pusher_check(legit: set[str]) -> Callable[[dict], None]:
    def check(answer: dict) -> None:
        event = answer.get("event")
        if answer.get("channel") in legit and event not in ff.PUSHER_EVENTS:
            return  # an event of the socket's own channel
        assert event in ff.PUSHER_EVENTS, "undocumented event"
        data = json.loads(answer["data"]) if isinstance(answer.get("data"), str) else {}
        if event == "pusher:error":
            assert data.get("code") in ff.PUSHER_ERRORS, "undocumented error code"
        if event == "pusher_internal:subscription_succeeded":
            assert answer["channel"] in legit, "subscribed without a signature"
        if event == "pusher:subscription_error":
            assert data.get("status") in (400, 401, 404)

    return check


@database_sync_to_async
def signed_by(user, socket_id: str, channel: str) -> str:
    """The signature /broadcasting/auth gives `user` (a real grant of the socket)."""
    from django.test import Client

    from tests.conftest import bearer

    response = Client().post(
        "/broadcasting/auth",
        {"socket_id": socket_id, "channel_name": channel},
        HTTP_AUTHORIZATION=bearer(user),
    )
    assert response.status_code == 200, response.content
    return response.json()["auth"]


def pusher_channels(staff, other_admin, system_admin) -> list[str]:
    return [
        f"private-tenant.{staff.tenant_id}",
        f"private-user.{staff.pk}",
        f"private-tenant.{other_admin.tenant_id}",
        f"presence-tenant.{other_admin.tenant_id}",
        f"presence-tenant.{staff.tenant_id}",
        f"private-user.{other_admin.pk}",
        "private-system.admin",
        "tenant.1",
        "public-channel",
        "private-encrypted-x",
    ]


async def pusher_fuzz(
    send: Send, receive: Receive, staff, other_admin, system_admin, *, count: int, rights: bool
) -> None:
    established = await receive()
    assert established["event"] == "pusher:connection_established"
    socket_id = json.loads(established["data"])["socket_id"]
    own = f"private-tenant.{staff.tenant_id}"
    signature = await signed_by(staff, socket_id, own)
    subscribe = json.dumps(
        {"event": "pusher:subscribe", "data": {"channel": own, "auth": signature}}
    )
    await send(subscribe)
    assert (await receive())["event"] == "pusher_internal:subscription_succeeded"
    channels = pusher_channels(staff, other_admin, system_admin)
    frames = ff.sample(ff.pusher_frames(channels), count)
    answers = await fuzz(
        frames,
        send,
        receive,
        sentinel='{"event":"pusher:ping","data":{}}',
        is_pong=lambda a: a.get("event") == "pusher:pong",
        pongs_of=ff.pusher_pongs,
        check=pusher_check({own}),
    )
    assert any(a["event"] == "pusher:subscription_error" for a in answers)
    assert any(a["event"] == "pusher:error" for a in answers)
    if not rights:  # another process's layer: this test cannot send to its groups
        return
    # Rights: subscribed again to its own channel (a fuzzed unsubscribe may have left it),
    # events of the other tenant, another user and the system admins do not arrive.
    await send(subscribe)
    assert (await receive())["event"] == "pusher_internal:subscription_succeeded"
    others = [tenant_group(other_admin.tenant_id), user_group(other_admin.pk), SYSTEM_ADMIN_GROUP]
    for n, group in enumerate(others):
        await group_send(group, event_message(group, 900_000 + n))
    mine = tenant_group(staff.tenant_id)
    await group_send(mine, event_message(mine, 999_999))
    frame = await receive()
    assert frame["channel"] == own and json.loads(frame["data"])["id"] == "999999", frame


async def test_fuzzed_frames_on_the_pusher_endpoint_get_documented_answers_and_no_rights(
    unlimited, caplog, staff, other_admin, system_admin
):
    caplog.set_level(logging.WARNING)
    comm = WebsocketCommunicator(application, f"/app/{PUSHER_KEY}?protocol=7")
    connected, _ = await comm.connect(timeout=60)
    assert connected
    await pusher_fuzz(
        *communicator_io(comm), staff, other_admin, system_admin, count=EXAMPLES, rights=True
    )
    await comm.disconnect()
    no_tracebacks(caplog)


# -- /ws/portal/ ----------------------------------------------------------------------------------


def portal_check(answer: dict) -> None:
    kind = answer.get("type")
    assert kind in ff.PORTAL_TYPES, "undocumented frame type"
    if kind == "error":
        assert answer.get("code") in ff.PORTAL_ERRORS, "undocumented error code"


async def portal_fuzz(send: Send, receive: Receive, count: int) -> None:
    first = await receive()
    assert (first["type"], first["state"]) == ("payment", "pending"), first
    answers = await fuzz(
        ff.sample(ff.portal_frames(), count),
        send,
        receive,
        sentinel='{"type":"ping"}',
        is_pong=lambda a: a.get("type") == "pong",
        pongs_of=ff.portal_pongs,
        check=portal_check,
    )
    assert {a["code"] for a in answers if a["type"] == "error"} == ff.PORTAL_ERRORS


async def test_fuzzed_frames_on_the_portal_socket_get_documented_answers(unlimited, caplog):
    caplog.set_level(logging.WARNING)
    payment = await make_payment(slug="fuzz")
    comm = portal_socket(payment.token)
    connected, _ = await comm.connect(timeout=60)
    assert connected
    await portal_fuzz(*communicator_io(comm), EXAMPLES)
    await comm.disconnect()
    no_tracebacks(caplog)


# -- real servers -------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("server_class", [Daphne, Uvicorn], ids=["daphne", "uvicorn"])
async def test_fuzzed_frames_against_a_real_server_leave_no_traceback(
    server_class, staff, other_admin, system_admin
):
    """The same fuzzers, fewer frames, on each endpoint of a real server; then its log."""
    payment = await make_payment(slug="fuzzlive")
    env = server_env(redis_url=None)
    env.update(NOTIFICATIONS_WS_BURST="1000000000", NOTIFICATIONS_WS_RATE="1000000000")
    (server,) = await asyncio.to_thread(server_class.start, env)
    base = f"ws://127.0.0.1:{server.port}"
    try:
        async with connect(f"{server.ws}?token={await jwt_for(staff)}", max_size=None) as ws:
            send, receive = websocket_io(ws)
            welcome = await receive()
            own = set(welcome["channels"])
            channels = notification_channels(staff, other_admin, system_admin)
            await fuzz(
                ff.sample(ff.notification_frames(channels), LIVE_EXAMPLES),
                send,
                receive,
                sentinel='{"action":"ping"}',
                is_pong=lambda a: a.get("type") == "pong",
                pongs_of=ff.notification_pongs,
                check=notification_check(own),
            )
        async with connect(f"{base}/app/{PUSHER_KEY}?protocol=7", max_size=None) as ws:
            await pusher_fuzz(
                *websocket_io(ws),
                staff,
                other_admin,
                system_admin,
                count=LIVE_EXAMPLES,
                rights=False,
            )
        async with connect(f"{base}/ws/portal/?token={payment.token}", max_size=None) as ws:
            await portal_fuzz(*websocket_io(ws), LIVE_EXAMPLES)
        log = server.output()
        assert "Traceback" not in log, log[-3000:]
    finally:
        await asyncio.to_thread(server.stop)
