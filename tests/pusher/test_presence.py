"""presence-tenant.<id> on /app/<key>: signed channel_data, one member per person, live changes.

The members are those of the presence scope `tenant.<id>` that /ws/notifications/ tabs share, so
both protocols see one list. Runs on the embedded default and, with REDIS_URL, on Redis.
"""

from __future__ import annotations

import json

import pusher
import pytest
from channels.db import database_sync_to_async
from django.test import Client, override_settings

from notifications.realtime.presence import member_info
from notifications.realtime.pusher.signing import auth_string
from tests.conftest import bearer
from tests.factories import TenantStaffFactory
from tests.notifications.wsutil import (
    committed_db,
    connect_user,
    drain,
    event_message,
    group_send,
)
from tests.pusher.test_consumer import authorize, established, open_socket, subscribe

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


def channel_of(user) -> str:
    return f"presence-tenant.{user.tenant_id}"


async def join(user, channel: str | None = None):
    """A Pusher socket subscribed to the presence channel through /broadcasting/auth."""
    channel = channel or channel_of(user)
    comm = await open_socket()
    socket_id = await established(comm)
    response = await authorize(user, socket_id, channel)
    assert response.status_code == 200, response.content
    body = response.json()
    await comm.send_json_to(
        {
            "event": "pusher:subscribe",
            "data": {"channel": channel, **body},
        }
    )
    frame = await comm.receive_json_from(timeout=3)
    assert frame["event"] == "pusher_internal:subscription_succeeded", frame
    assert frame["channel"] == channel
    return comm, socket_id, json.loads(frame["data"])["presence"]


async def next_frame(comm) -> dict:
    frame = await comm.receive_json_from(timeout=3)
    return {**frame, "data": json.loads(frame["data"])}


async def next_internal(comm) -> dict:
    """The next pusher_internal frame (domain events that arrive meanwhile are skipped)."""
    while not (frame := await next_frame(comm))["event"].startswith("pusher_internal:"):
        pass
    return frame


async def expect_closed(comm, code: int) -> None:
    while (message := await comm.receive_output(3))["type"] != "websocket.close":
        pass
    assert message["code"] == code


def test_auth_endpoint_returns_laravel_channel_data_signed_with_the_channel(tenant_admin):
    channel = channel_of(tenant_admin)
    response = Client().post(
        "/broadcasting/auth",
        {"socket_id": "123.456", "channel_name": channel},
        HTTP_AUTHORIZATION=bearer(tenant_admin),
    )
    assert response.status_code == 200
    body = response.json()
    assert json.loads(body["channel_data"]) == {
        "user_id": tenant_admin.pk,
        "user_info": member_info(tenant_admin),
    }
    assert body["auth"] == auth_string("123.456", channel, body["channel_data"])


def test_auth_endpoint_refuses_another_tenants_presence_channel(tenant_admin, other_admin):
    response = Client().post(
        "/broadcasting/auth",
        {"socket_id": "123.456", "channel_name": channel_of(other_admin)},
        HTTP_AUTHORIZATION=bearer(tenant_admin),
    )
    assert response.status_code == 403
    assert "auth" not in response.json()


async def test_subscription_succeeded_lists_the_members_with_pusher_ids(tenant_admin, staff):
    admin, _, presence = await join(tenant_admin)
    me = str(tenant_admin.pk)
    assert presence == {"ids": [me], "hash": {me: member_info(tenant_admin)}, "count": 1}
    other, _, presence = await join(staff)
    assert sorted(presence["ids"]) == sorted([me, str(staff.pk)])
    assert presence["count"] == 2
    assert presence["hash"][str(staff.pk)] == member_info(staff)
    await other.disconnect()
    await admin.disconnect()


async def test_one_member_per_person_across_sockets_and_removed_after_the_last(tenant_admin, staff):
    watcher, _, _ = await join(tenant_admin)
    first, _, _ = await join(staff)
    added = await next_frame(watcher)
    assert added == {
        "event": "pusher_internal:member_added",
        "channel": channel_of(staff),
        "data": {"user_id": str(staff.pk), "user_info": member_info(staff)},
    }
    second, _, presence = await join(staff)
    assert presence["count"] == 2, "the second socket of a person is not a second member"
    assert await watcher.receive_nothing(0.3), "no member_added for a second socket"
    await first.disconnect()
    assert await watcher.receive_nothing(0.3), "still online on the other socket"
    await second.disconnect()
    removed = await next_frame(watcher)
    assert removed == {
        "event": "pusher_internal:member_removed",
        "channel": channel_of(staff),
        "data": {"user_id": str(staff.pk)},
    }
    await watcher.disconnect()


async def test_a_socket_is_never_told_of_its_own_person(tenant_admin):
    first, _, _ = await join(tenant_admin)
    second, _, _ = await join(tenant_admin)
    await first.disconnect()
    assert await second.receive_nothing(0.4)
    await second.disconnect()


@override_settings(NOTIFICATIONS_PRESENCE_GRACE=5)
async def test_unsubscribe_leaves_the_members_at_once(tenant_admin, staff):
    watcher, _, _ = await join(tenant_admin)
    comm, _, _ = await join(staff)
    assert (await next_frame(watcher))["event"] == "pusher_internal:member_added"
    await comm.send_json_to({"event": "pusher:unsubscribe", "data": {"channel": channel_of(staff)}})
    assert (await next_frame(watcher))["data"] == {"user_id": str(staff.pk)}
    await comm.disconnect()
    await watcher.disconnect()


async def test_one_person_across_ws_notifications_and_pusher(tenant_admin, staff):
    """The scope is shared: a tab on /ws/notifications/ and a Pusher socket are one member."""
    tab, _ = await connect_user(staff)  # every signed-in tab is present in its tenant
    await tab.send_json_to({"action": "presence", "channel": f"tenant.{staff.tenant_id}"})
    listing = await tab.receive_json_from(timeout=3)
    assert [m["id"] for m in listing["members"]] == [staff.pk]
    comm, _, presence = await join(staff)
    assert presence["ids"] == [str(staff.pk)]
    assert await tab.receive_nothing(0.3), "the same person: no member_added on the tab"
    admin, _, presence = await join(tenant_admin)
    assert presence["count"] == 2
    frames = await drain(tab)
    assert [(f["type"], f["member"]["id"]) for f in frames] == [("member_added", tenant_admin.pk)]
    assert (await next_frame(comm))["data"]["user_id"] == str(tenant_admin.pk)
    await tab.disconnect()
    assert await admin.receive_nothing(0.3), "staff is still online on the Pusher socket"
    await comm.disconnect()
    assert (await next_frame(admin))["data"] == {"user_id": str(staff.pk)}
    await admin.disconnect()


@override_settings(NOTIFICATIONS_PRESENCE_GRACE=0.8)
async def test_a_closed_socket_lingers_like_a_page_so_reconnecting_is_not_leaving(
    tenant_admin, staff
):
    watcher, _, _ = await join(tenant_admin)
    comm, _, _ = await join(staff)
    assert (await next_frame(watcher))["event"] == "pusher_internal:member_added"
    await comm.disconnect()  # the next page of a multi-page app reconnects
    comm, _, _ = await join(staff)
    assert await watcher.receive_nothing(1.2), "no blink offline and back"
    await comm.disconnect()  # and now really leaves
    assert await watcher.receive_nothing(0.4), "not before the grace"
    removed = await next_frame(watcher)
    assert removed["data"] == {"user_id": str(staff.pk)}
    await watcher.disconnect()


async def test_channel_data_for_another_user_is_refused(tenant_admin, staff):
    watcher, _, _ = await join(tenant_admin)
    comm = await open_socket()
    socket_id = await established(comm)
    channel = channel_of(staff)
    signed = (await authorize(staff, socket_id, channel)).json()
    forged = json.dumps({"user_id": tenant_admin.pk, "user_info": member_info(tenant_admin)})
    await comm.send_json_to(
        {
            "event": "pusher:subscribe",
            "data": {"channel": channel, "auth": signed["auth"], "channel_data": forged},
        }
    )
    frame = await next_frame(comm)
    assert frame["event"] == "pusher:subscription_error"
    assert frame["data"] == {
        "type": "AuthError",
        "error": "Invalid signature for this socket.",
        "status": 401,
    }
    # Without channel_data (a private-style signature) a presence channel is refused too.
    await comm.send_json_to(
        {
            "event": "pusher:subscribe",
            "data": {"channel": channel, "auth": auth_string(socket_id, channel)},
        }
    )
    frame = await next_frame(comm)
    assert frame["data"]["status"] == 401
    assert "channel_data" in frame["data"]["error"]
    assert await watcher.receive_nothing(0.3), "nobody joined"
    await comm.disconnect()
    await watcher.disconnect()


@pytest.mark.parametrize(
    "channel_data",
    ['{"user_id":"ana"}', '{"user_info":{}}', "[1]", "not json", '{"user_id":5,"user_info":3}'],
)
async def test_signed_channel_data_of_the_wrong_shape_is_a_400(tenant_admin, channel_data):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = channel_of(tenant_admin)
    auth = auth_string(socket_id, channel, channel_data)
    await comm.send_json_to(
        {
            "event": "pusher:subscribe",
            "data": {"channel": channel, "auth": auth, "channel_data": channel_data},
        }
    )
    frame = await next_frame(comm)
    assert frame["event"] == "pusher:subscription_error"
    assert frame["data"]["status"] == 400
    assert "user_id" in frame["data"]["error"]
    await comm.disconnect()


async def test_another_tenant_cannot_subscribe(tenant_admin, other_admin):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = channel_of(other_admin)
    assert (await authorize(tenant_admin, socket_id, channel)).status_code == 403
    # Its own signature does not open another channel.
    own = channel_of(tenant_admin)
    body = (await authorize(tenant_admin, socket_id, own)).json()
    await comm.send_json_to(
        {"event": "pusher:subscribe", "data": {"channel": channel, **body}},
    )
    frame = await next_frame(comm)
    assert (frame["event"], frame["data"]["status"]) == ("pusher:subscription_error", 401)
    await group_send(f"tenant.{other_admin.tenant_id}", event_message("x", 1))
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


async def test_a_backend_holding_the_secret_signs_presence_like_the_pusher_library(staff):
    """Laravel's backend signs channel_data with the official library; the server accepts it."""
    comm = await open_socket()
    socket_id = await established(comm)
    channel = channel_of(staff)
    library = pusher.Pusher(app_id="4242", key="test-key", secret="test-secret-0123456789")
    body = library.authenticate(
        channel, socket_id, {"user_id": str(staff.pk), "user_info": {"name": "From Laravel"}}
    )
    await comm.send_json_to({"event": "pusher:subscribe", "data": {"channel": channel, **body}})
    frame = await next_frame(comm)
    assert frame["event"] == "pusher_internal:subscription_succeeded"
    me = str(staff.pk)
    assert frame["data"]["presence"]["hash"] == {me: {"name": "From Laravel", "id": staff.pk}}
    await comm.disconnect()


async def test_tenant_events_arrive_once_on_each_subscribed_channel(tenant_admin):
    comm, socket_id, _ = await join(tenant_admin)
    group = f"tenant.{tenant_admin.tenant_id}"
    message = event_message(group, 1, name="UserCreated")
    await group_send(group, message)
    assert await next_frame(comm) == {
        "event": "UserCreated",
        "channel": channel_of(tenant_admin),
        "data": json.loads(message["text"]),
    }
    assert await comm.receive_nothing(0.2)
    private = f"private-tenant.{tenant_admin.tenant_id}"
    assert (await subscribe(comm, socket_id, private))["event"] == (
        "pusher_internal:subscription_succeeded"
    )
    await group_send(group, event_message(group, 2))
    frames = [await next_frame(comm), await next_frame(comm)]
    assert sorted(f["channel"] for f in frames) == sorted([private, channel_of(tenant_admin)])
    assert await comm.receive_nothing(0.3), "never twice on the same channel"
    await comm.disconnect()


@override_settings(NOTIFICATIONS_PRESENCE_GRACE=5)
async def test_suspending_a_member_closes_its_socket_and_removes_it_at_once(tenant_admin, staff):
    from accounts.services import user_suspend

    watcher, _, _ = await join(tenant_admin)
    comm, _, _ = await join(staff)
    assert (await next_frame(watcher))["event"] == "pusher_internal:member_added"
    await database_sync_to_async(user_suspend)(user=staff, by=tenant_admin, reason="test")
    await expect_closed(comm, 4009)
    removed = await next_internal(watcher)  # after the AccountSuspended event, in any order
    assert removed["event"] == "pusher_internal:member_removed"
    assert removed["data"] == {"user_id": str(staff.pk)}
    await watcher.disconnect()


async def test_many_members_listed_once_each(tenant_admin, tenant):
    """Members joined on other sockets appear in the hash with their info, once each."""
    people = [
        await database_sync_to_async(TenantStaffFactory)(tenant=tenant, first_name=f"P{i}")
        for i in range(3)
    ]
    sockets = [(await join(person))[0] for person in people]
    comm, _, presence = await join(tenant_admin)
    assert presence["count"] == 4
    assert sorted(presence["ids"]) == sorted(str(p.pk) for p in [*people, tenant_admin])
    assert len(set(presence["ids"])) == 4
    for socket in [*sockets, comm]:
        await socket.disconnect()
