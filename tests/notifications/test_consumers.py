"""/ws/notifications/: handshake, welcome, every client frame and every error it can get."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from django.test import override_settings

from config.wsframes import SEND_FRAME, encode_text_frame
from tests.notifications.wsutil import (
    committed_db,
    communicator,
    connect_user,
    drain,
    event_message,
    expect_close,
    group_send,
    session_cookie,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


async def test_welcome_frame_names_user_groups_and_a_pusher_socket_id(tenant_admin):
    comm, welcome = await connect_user(tenant_admin)
    assert set(welcome) == {"type", "socket_id", "user", "channels"}
    assert re.fullmatch(r"\d+\.\d+", welcome["socket_id"])
    assert welcome["user"] == {
        "id": tenant_admin.pk,
        "username": "acme-admin",
        "role": "tenant_admin",
        "tenant": tenant_admin.tenant_id,
    }
    assert welcome["channels"] == [f"tenant.{tenant_admin.tenant_id}", f"user.{tenant_admin.pk}"]
    await comm.disconnect()


async def test_each_socket_gets_its_own_socket_id(staff):
    first, w1 = await connect_user(staff)
    second, w2 = await connect_user(staff)
    assert w1["socket_id"] != w2["socket_id"]
    await first.disconnect()
    await second.disconnect()


@pytest.mark.parametrize("via", ["header", "query"])
async def test_jwt_access_token_authenticates(via, staff):
    comm, welcome = await connect_user(staff, via=via)
    assert welcome["user"]["username"] == "acme-staff"
    await comm.disconnect()


async def test_ping_gets_pong(staff):
    comm, _ = await connect_user(staff)
    await comm.send_json_to({"action": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.disconnect()


async def test_unsubscribe_stops_events_and_subscribe_resumes_them(staff):
    comm, _ = await connect_user(staff)
    group = f"tenant.{staff.tenant_id}"
    await comm.send_json_to({"action": "unsubscribe", "channel": group})
    assert await comm.receive_json_from() == {"type": "unsubscribed", "channel": group}
    await group_send(group, event_message(group, 1))
    assert await comm.receive_nothing(0.3)
    # the user group still delivers
    await group_send(f"user.{staff.pk}", event_message(f"user.{staff.pk}", 2))
    assert (await comm.receive_json_from())["id"] == "2"

    await comm.send_json_to({"action": "subscribe", "channel": group})
    assert await comm.receive_json_from() == {"type": "subscribed", "channel": group}
    await group_send(group, event_message(group, 3))
    assert (await comm.receive_json_from())["id"] == "3"
    await comm.disconnect()


async def test_event_text_is_forwarded_byte_for_byte(staff):
    comm, _ = await connect_user(staff)
    group = f"tenant.{staff.tenant_id}"
    message = event_message(group, 7)
    message["text"] = message["text"].replace('"data": {}', '"data": {"k": "<b>x</b> \\u00e9"}')
    await group_send(group, message)
    assert await comm.receive_from() == message["text"]
    await comm.disconnect()


async def test_where_the_server_takes_finished_frames_an_event_is_encoded_once(staff):
    """config.wsprotocol offers `websocket.send_frame`: every socket of the group is handed the
    same message with the frame already encoded; a server without it gets `websocket.send`."""
    fast = []
    for _ in range(2):
        comm = communicator(cookie=await session_cookie(staff))
        comm.scope["extensions"] = {SEND_FRAME: {}}  # read when the app first runs
        assert (await comm.connect(timeout=3))[0]
        assert (await comm.receive_json_from(timeout=3))["type"] == "welcome"
        fast.append(comm)
    plain, _ = await connect_user(staff)
    group = f"tenant.{staff.tenant_id}"
    message = event_message(group, 9)
    await group_send(group, message)
    sent = [await comm.receive_output(timeout=2) for comm in fast]
    assert sent[0] == {
        "type": SEND_FRAME,
        "frame": encode_text_frame(message["text"]),
        "text": message["text"],
    }
    assert sent[1] is sent[0]  # one message (one encoding) for every socket
    assert await plain.receive_output(timeout=2) == {
        "type": "websocket.send",
        "text": message["text"],
    }
    # Other frames (a pong) take the normal path on every server.
    await fast[0].send_json_to({"action": "ping"})
    assert await fast[0].receive_json_from() == {"type": "pong"}
    for comm in [*fast, plain]:
        await comm.disconnect()


async def test_forbidden_channel_gets_an_error_and_the_socket_stays_open(staff, other_tenant):
    comm, _ = await connect_user(staff)
    for channel in (f"tenant.{other_tenant.pk}", "system.admin", "session.abc", "nonsense"):
        await comm.send_json_to({"action": "subscribe", "channel": channel})
        reply = await comm.receive_json_from()
        assert reply["type"] == "error"
        assert reply["code"] == "forbidden"
        assert reply["channel"] == channel
    await comm.send_json_to({"action": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('"ping"', "invalid_frame"),
        ("{}", "missing_field"),
        ('{"action": "subscribe"}', "missing_field"),
        ('{"action": "unsubscribe"}', "missing_field"),
        ('{"action": "subscribe", "channel": 5}', "invalid_field"),
        ('{"action": "subscribe", "channel": ""}', "invalid_field"),
        ('{"action": "dance"}', "unknown_action"),
        ('{"action": null}', "unknown_action"),
        ('{"type": "notify.event", "text": "x"}', "missing_field"),
        ("[" * 2000 + "]" * 2000, "invalid_json"),  # 4,000 bytes: RecursionError in json
        ('{"action": "ping", "x": ' + "[" * 2000 + "]" * 2000 + "}", "invalid_json"),
    ],
)
async def test_bad_frames_get_distinct_error_codes(frame, code, staff):
    comm, _ = await connect_user(staff)
    await comm.send_to(text_data=frame)
    reply = await comm.receive_json_from()
    assert reply["type"] == "error"
    assert reply["code"] == code
    assert reply["message"]
    # and the socket still works
    await comm.send_json_to({"action": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.disconnect()


async def test_binary_frame_is_refused(staff):
    comm, _ = await connect_user(staff)
    await comm.send_to(bytes_data=b'{"action": "ping"}')
    reply = await comm.receive_json_from()
    assert (reply["type"], reply["code"]) == ("error", "binary_not_supported")
    await comm.disconnect()


async def test_oversized_frame_is_refused_but_4_kib_is_fine(staff):
    comm, _ = await connect_user(staff)
    padding = "x" * (4096 - len('{"action":"ping","p":""}'))
    await comm.send_to(text_data=f'{{"action":"ping","p":"{padding}"}}')  # exactly 4096 bytes
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.send_to(text_data=f'{{"action":"ping","p":"{padding}x"}}')
    reply = await comm.receive_json_from()
    assert (reply["type"], reply["code"]) == ("error", "frame_too_large")
    # multi-byte characters count in bytes, not characters
    await comm.send_to(text_data=json.dumps({"action": "ping", "p": "é" * 2100}))
    assert (await comm.receive_json_from())["code"] == "frame_too_large"
    await comm.disconnect()


async def test_a_flood_of_frames_closes_the_socket_4429(staff):
    comm, _ = await connect_user(staff)
    for _ in range(60):
        await comm.send_json_to({"action": "ping"})
    message = await expect_close(comm, 4429)
    assert "frames" in message.get("reason", "")


@override_settings(NOTIFICATIONS_WS_BURST=5, NOTIFICATIONS_WS_RATE=20)
async def test_a_steady_client_within_the_rate_is_not_closed(staff):
    comm, _ = await connect_user(staff)
    for _ in range(15):  # 15 frames over ~1 s: 15/s < 20/s
        await comm.send_json_to({"action": "ping"})
        assert await comm.receive_json_from() == {"type": "pong"}
        await asyncio.sleep(0.07)
    await comm.disconnect()


async def test_client_frames_never_reach_another_socket(staff, tenant_admin):
    sender, _ = await connect_user(staff)
    listener, _ = await connect_user(tenant_admin)
    group = f"tenant.{staff.tenant_id}"
    for frame in (
        {"action": "publish", "channel": group, "event": "x"},
        {"type": "notify.event", "text": "{}", "channel": group},
        {"action": "subscribe", "channel": group, "text": "hi"},
    ):
        await sender.send_json_to(frame)
    await drain(sender)
    assert await listener.receive_nothing(0.3)
    await sender.disconnect()
    await listener.disconnect()


async def test_exclude_skips_only_the_originating_socket(staff):
    origin, welcome = await connect_user(staff)
    other_tab, _ = await connect_user(staff)
    group = f"tenant.{staff.tenant_id}"
    await group_send(group, event_message(group, 11, exclude=welcome["socket_id"]))
    assert (await other_tab.receive_json_from())["id"] == "11"
    assert await origin.receive_nothing(0.3)
    await origin.disconnect()
    await other_tab.disconnect()


async def test_roles_filter_drops_events_for_other_roles(staff, tenant_admin):
    staff_ws, _ = await connect_user(staff)
    admin_ws, _ = await connect_user(tenant_admin)
    group = f"tenant.{staff.tenant_id}"
    await group_send(group, event_message(group, 21, roles=["tenant_admin"]))
    assert (await admin_ws.receive_json_from())["id"] == "21"
    assert await staff_ws.receive_nothing(0.3)
    await group_send(group, event_message(group, 22, roles=["tenant_admin", "staff"]))
    assert (await staff_ws.receive_json_from())["id"] == "22"
    assert (await admin_ws.receive_json_from())["id"] == "22"
    await staff_ws.disconnect()
    await admin_ws.disconnect()


async def test_notify_close_closes_with_its_code(staff):
    comm, _ = await connect_user(staff)
    await group_send(f"user.{staff.pk}", {"type": "notify.close", "code": 4403, "reason": "bye"})
    message = await expect_close(comm, 4403)
    assert message["reason"] == "bye"


async def test_events_are_forwarded_without_a_database_query(staff, monkeypatch):
    """The per-event path must not query: with every cursor refused, events still flow."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    comm, welcome = await connect_user(staff)
    group = f"tenant.{staff.tenant_id}"

    def refuse(*args, **kwargs):
        raise AssertionError("a database query on the event path")

    monkeypatch.setattr(BaseDatabaseWrapper, "_cursor", refuse)
    await group_send(group, event_message(group, 31))
    await group_send(group, event_message(group, 32, roles=["staff"]))
    await group_send(group, event_message(group, 33, exclude=welcome["socket_id"]))
    assert [f["id"] for f in await drain(comm)] == ["31", "32"]
    monkeypatch.undo()
    await comm.disconnect()


def test_protocol_doc_lists_every_error_and_close_code():
    """docs/protocol.md is the client authors' reference: it must name every code we send."""
    from pathlib import Path

    from notifications.realtime import consumers, protocol

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    source = Path(consumers.__file__).read_text()
    error_codes = set(re.findall(r'_error\(\s*"([a-z_]+)"', source)) | {"forbidden"}
    assert len(error_codes) >= 8
    for code in error_codes:
        assert f"`{code}`" in doc, code
    for name in dir(protocol):
        if name.startswith("CLOSE_"):
            assert f"**{getattr(protocol, name)}**" in doc, name


@pytest.mark.parametrize("via", ["session", "header"])
async def test_a_socket_keeps_its_instance_dict_small(via, staff, monkeypatch):
    """Under 30 instance attributes CPython shares the dict's keys between the sockets
    (280 instead of 1,584 bytes each; issue 16's memory per socket)."""
    from notifications.realtime.consumers import NotificationConsumer

    seen = []
    real = NotificationConsumer.connect

    async def capture(self):
        await real(self)
        seen.append(self)

    monkeypatch.setattr(NotificationConsumer, "connect", capture)
    comm, _ = await connect_user(staff, via=via)
    await comm.send_json_to({"action": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    assert len(vars(seen[0])) < 30, sorted(vars(seen[0]))
    await comm.disconnect()
