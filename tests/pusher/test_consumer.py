"""/app/<key>: the Pusher protocol 7 socket over the same groups, events and closes."""

from __future__ import annotations

import json
import re

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from notifications.realtime.pusher.signing import auth_string
from tests.notifications.wsutil import (
    committed_db,
    event_message,
    group_send,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


async def open_socket(key: str = "test-key", query: str = "?protocol=7&client=js&version=8.6.0"):
    comm = WebsocketCommunicator(application, f"/app/{key}{query}")
    connected, _ = await comm.connect(timeout=3)
    assert connected
    return comm


async def established(comm) -> str:
    frame = await comm.receive_json_from(timeout=3)
    assert frame["event"] == "pusher:connection_established", frame
    data = json.loads(frame["data"])
    assert data["activity_timeout"] == 120
    assert re.fullmatch(r"\d+\.\d+", data["socket_id"])
    return data["socket_id"]


@database_sync_to_async
def authorize(user, socket_id: str, channel: str):
    """POST /broadcasting/auth as `user` (bearer token), as Echo's authorizer does."""
    from tests.conftest import bearer

    return Client().post(
        "/broadcasting/auth",
        {"socket_id": socket_id, "channel_name": channel},
        HTTP_AUTHORIZATION=bearer(user),
    )


async def subscribe(comm, socket_id: str, channel: str, auth: str | None = None) -> dict:
    auth = auth if auth is not None else auth_string(socket_id, channel)
    await comm.send_json_to(
        {"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}
    )
    return await comm.receive_json_from(timeout=3)


async def test_connection_established_then_ping_pong():
    comm = await open_socket()
    await established(comm)
    await comm.send_json_to({"event": "pusher:ping", "data": {}})
    assert await comm.receive_json_from() == {"event": "pusher:pong", "data": "{}"}
    await comm.disconnect()


async def test_unknown_app_key_gets_4001_error_and_close():
    comm = await open_socket(key="wrong-key")
    frame = await comm.receive_json_from()
    assert frame["event"] == "pusher:error"
    assert json.loads(frame["data"])["code"] == 4001
    assert (await comm.receive_output())["code"] == 4001


async def test_unsupported_protocol_gets_4007_and_close():
    comm = await open_socket(query="?protocol=3")
    frame = await comm.receive_json_from()
    assert json.loads(frame["data"])["code"] == 4007
    assert (await comm.receive_output())["code"] == 4007


async def test_signed_subscription_receives_events_wrapped_in_pusher_frames(tenant_admin):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    response = await authorize(tenant_admin, socket_id, channel)
    assert response.status_code == 200
    auth = response.json()["auth"]
    assert auth.startswith("test-key:")
    assert await subscribe(comm, socket_id, channel, auth) == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": channel,
        "data": "{}",
    }
    group = f"tenant.{tenant_admin.tenant_id}"
    message = event_message(group, 7, name="UserCreated")
    await group_send(group, message)
    frame = await comm.receive_json_from(timeout=3)
    assert frame == {"event": "UserCreated", "channel": channel, "data": message["text"]}
    await comm.disconnect()


async def test_bad_signature_is_a_subscription_error_and_no_events(tenant_admin):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    other_socket = "1.2"
    frame = await subscribe(comm, socket_id, channel, auth_string(other_socket, channel))
    assert frame["event"] == "pusher:subscription_error"
    assert frame["channel"] == channel
    assert frame["data"] == json.dumps(
        {"type": "AuthError", "error": "Invalid signature for this socket.", "status": 401},
        separators=(",", ":"),
    )
    await group_send(f"tenant.{tenant_admin.tenant_id}", event_message("x", 1))
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


@pytest.mark.parametrize("channel", ["tenant.1", "private-tenant.x", "presence-user.1", 5])
async def test_unknown_channels_are_refused(channel):
    comm = await open_socket()
    socket_id = await established(comm)
    frame = await subscribe(comm, socket_id, channel, auth_string(socket_id, str(channel)))
    assert frame["event"] == "pusher:subscription_error"
    assert json.loads(frame["data"])["status"] == 404
    await comm.disconnect()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "The frame is not valid JSON."),
        ("[1]", "A frame is a JSON object with an event."),
        ('{"event":"pusher:nope"}', "Unknown event pusher:nope."),
        (
            '{"event":"client-typing","channel":"private-tenant.1","data":{}}',
            "Client events are not enabled.",
        ),
    ],
)
async def test_bad_frames_get_pusher_error_and_socket_stays(text, message):
    comm = await open_socket()
    await established(comm)
    await comm.send_to(text_data=text)
    frame = await comm.receive_json_from()
    assert frame["event"] == "pusher:error"
    assert json.loads(frame["data"]) == {"code": 4300, "message": message}
    await comm.send_json_to({"event": "pusher:ping", "data": {}})
    assert (await comm.receive_json_from())["event"] == "pusher:pong"
    await comm.disconnect()


async def test_role_restricted_events_follow_the_signers_role(staff, tenant_admin):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{staff.tenant_id}"
    response = await authorize(staff, socket_id, channel)
    frame = await subscribe(comm, socket_id, channel, response.json()["auth"])
    assert frame["event"] == "pusher_internal:subscription_succeeded"
    group = f"tenant.{staff.tenant_id}"
    await group_send(group, event_message(group, 1, roles=["tenant_admin"]))
    await group_send(group, event_message(group, 2, roles=["tenant_admin", "staff"]))
    frame = await comm.receive_json_from(timeout=3)
    assert json.loads(frame["data"])["id"] == "2"
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


async def test_exclude_uses_the_pusher_socket_id(tenant_admin):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    await subscribe(comm, socket_id, channel)
    group = f"tenant.{tenant_admin.tenant_id}"
    await group_send(group, event_message(group, 1, exclude=socket_id))
    await group_send(group, event_message(group, 2, exclude="9.9"))
    assert json.loads((await comm.receive_json_from(timeout=3))["data"])["id"] == "2"
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


async def test_unsubscribe_stops_events(tenant_admin):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    await subscribe(comm, socket_id, channel)
    await comm.send_json_to({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    group = f"tenant.{tenant_admin.tenant_id}"
    await group_send(group, event_message(group, 1))
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


async def test_suspending_the_signer_closes_the_socket(staff, tenant_admin):
    """Revocation reaches a socket that only subscribed to the tenant channel."""
    from accounts.services import user_suspend

    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{staff.tenant_id}"
    response = await authorize(staff, socket_id, channel)
    await subscribe(comm, socket_id, channel, response.json()["auth"])
    await database_sync_to_async(user_suspend)(user=staff, by=tenant_admin, reason="test")
    while (message := await comm.receive_output(3))["type"] != "websocket.close":
        pass
    assert message["code"] == 4009


async def test_oversized_and_binary_frames_get_pusher_error():
    comm = await open_socket()
    await established(comm)
    await comm.send_to(text_data=json.dumps({"event": "pusher:ping", "data": "x" * 11000}))
    frame = await comm.receive_json_from()
    assert json.loads(frame["data"])["code"] == 4300
    await comm.send_to(bytes_data=b"\x00\x01")
    frame = await comm.receive_json_from()
    assert json.loads(frame["data"])["code"] == 4300
    await comm.disconnect()


async def test_too_many_frames_close_with_4301():
    from django.test import override_settings

    with override_settings(NOTIFICATIONS_WS_BURST=3, NOTIFICATIONS_WS_RATE=0.1):
        comm = await open_socket()
        await established(comm)
        for _ in range(4):
            await comm.send_json_to({"event": "pusher:ping", "data": {}})
        while (message := await comm.receive_output(3))["type"] != "websocket.close":
            pass
        assert message["code"] == 4301


async def test_signing_out_closes_a_socket_authorized_by_the_session(tenant_admin):
    """Cookie-authorized subscriptions join the session's group: logout closes the socket."""
    from django.conf import settings as django_settings

    @database_sync_to_async
    def sign_in_and_authorize(socket_id: str, channel: str):
        client = Client()
        client.force_login(tenant_admin)
        response = client.post(
            "/broadcasting/auth", {"socket_id": socket_id, "channel_name": channel}
        )
        return client, response

    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    client, response = await sign_in_and_authorize(socket_id, channel)
    assert response.status_code == 200
    assert client.cookies[django_settings.SESSION_COOKIE_NAME].value
    frame = await subscribe(comm, socket_id, channel, response.json()["auth"])
    assert frame["event"] == "pusher_internal:subscription_succeeded"
    await database_sync_to_async(client.post)("/accounts/logout/")
    while (message := await comm.receive_output(3))["type"] != "websocket.close":
        pass
    assert message["code"] == 4009


async def test_a_grant_by_another_user_neither_closes_nor_narrows_the_socket(
    staff, tenant_admin, other_admin
):
    """Knowing a socket id lets another user sign for it, never take it over."""
    from accounts.services import user_suspend

    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    response = await authorize(tenant_admin, socket_id, channel)
    await subscribe(comm, socket_id, channel, response.json()["auth"])
    # another tenant's admin asks for a signature of their own user channel for this socket
    intruder = await authorize(other_admin, socket_id, f"private-user.{other_admin.pk}")
    assert intruder.status_code == 200
    # and a staff member of the same tenant does the same
    await authorize(staff, socket_id, f"private-user.{staff.pk}")
    group = f"tenant.{tenant_admin.tenant_id}"
    await group_send(group, event_message(group, 1, roles=["tenant_admin"]))
    frame = await comm.receive_json_from(timeout=3)
    assert json.loads(frame["data"])["id"] == "1", "still filtered by the first signer's role"
    await database_sync_to_async(user_suspend)(user=other_admin, by=None, reason="test")
    await database_sync_to_async(user_suspend)(user=staff, by=tenant_admin, reason="test")
    while not await comm.receive_nothing(0.5):  # the tenant's UserSuspended event, no close
        assert (await comm.receive_output())["type"] == "websocket.send"
    await comm.send_json_to({"event": "pusher:ping", "data": {}})
    assert (await comm.receive_json_from(timeout=3))["event"] == "pusher:pong"
    await comm.disconnect()


DEEP = "[" * 2000 + "]" * 2000  # 4,000 bytes that json.loads cannot parse (RecursionError)


@pytest.mark.parametrize(
    "text",
    [
        DEEP,
        json.dumps({"event": "pusher:subscribe", "data": "@"}).replace('"@"', json.dumps(DEEP)),
    ],
    ids=["frame", "data-string"],
)
async def test_a_2000_deep_array_gets_an_error_frame_and_the_socket_stays(text):
    comm = await open_socket()
    await established(comm)
    await comm.send_to(text_data=text)
    frame = await comm.receive_json_from(timeout=3)
    assert frame["event"] in ("pusher:error", "pusher:subscription_error"), frame
    if frame["event"] == "pusher:error":
        assert json.loads(frame["data"])["code"] == 4300
    await comm.send_json_to({"event": "pusher:ping", "data": {}})
    assert (await comm.receive_json_from(timeout=3))["event"] == "pusher:pong"
    await comm.disconnect()
