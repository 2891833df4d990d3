"""Client events (`client-*`, Echo's whisper) between the sockets of one channel.

Off unless PUSHER_CLIENT_EVENTS; only on subscribed private/presence channels; never back to the
sender, never to another channel or tenant; 10 per second per connection; not stored.
"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from notifications.models import StoredEvent
from tests.notifications.wsutil import (
    committed_db,
)
from tests.pusher.test_consumer import established, open_socket, subscribe
from tests.pusher.test_presence import join, next_frame

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]

ONLY_PRIVATE = "Client events are only allowed on private- and presence- channels."
BAD_NAME = "Client event names are client- followed by 1 to 193 letters, digits or _-=@,.;"

enabled = override_settings(PUSHER_CLIENT_EVENTS=True)


async def subscribed(channel: str):
    comm = await open_socket()
    socket_id = await established(comm)
    frame = await subscribe(comm, socket_id, channel)
    assert frame["event"] == "pusher_internal:subscription_succeeded", frame
    return comm


async def whisper(comm, channel: str, event: str = "client-typing", data=None) -> None:
    data = {"typing": True} if data is None else data
    await comm.send_json_to({"event": event, "channel": channel, "data": data})


async def error_of(comm) -> dict:
    frame = await comm.receive_json_from(timeout=3)
    assert frame["event"] == "pusher:error", frame
    return json.loads(frame["data"])


@enabled
async def test_reach_the_others_on_the_channel_only(tenant, other_tenant):
    channel = f"private-tenant.{tenant.pk}"
    sender, receiver = await subscribed(channel), await subscribed(channel)
    bystander = await open_socket()  # same tenant's app, not subscribed
    await established(bystander)
    other_channel = f"private-tenant.{other_tenant.pk}"
    other = await subscribed(other_channel)
    other_user = await subscribed(f"private-user.{tenant.pk}")  # another channel, same id
    await whisper(sender, channel)
    assert await receiver.receive_json_from(timeout=3) == {
        "event": "client-typing",
        "channel": channel,
        "data": '{"typing":true}',
    }
    for comm in (sender, bystander, other, other_user):
        assert await comm.receive_nothing(0.3), "never echoed, never to another channel"
    # The other tenant's whisper does not reach this tenant either.
    await whisper(other, other_channel)
    for comm in (sender, receiver):
        assert await comm.receive_nothing(0.3)
    assert not await StoredEvent.objects.aexists(), "ephemeral: nothing stored"
    for comm in (sender, receiver, bystander, other, other_user):
        await comm.disconnect()


@enabled
async def test_presence_whispers_carry_the_senders_user_id(tenant_admin, staff):
    sender, _, _ = await join(staff)
    receiver, _, _ = await join(tenant_admin)
    await whisper(sender, f"presence-tenant.{staff.tenant_id}", data={"x": 1})
    while (frame := await receiver.receive_json_from(timeout=3))["event"] != "client-typing":
        pass
    assert frame == {
        "event": "client-typing",
        "channel": f"presence-tenant.{staff.tenant_id}",
        "data": '{"x":1}',
        "user_id": str(staff.pk),
    }
    while not await sender.receive_nothing(0.3):  # member_added of the receiver only
        assert (await next_frame(sender))["event"] == "pusher_internal:member_added"
    await sender.disconnect()
    await receiver.disconnect()


@enabled
async def test_after_unsubscribe_no_more_whispers(tenant):
    channel = f"private-tenant.{tenant.pk}"
    sender, receiver = await subscribed(channel), await subscribed(channel)
    await receiver.send_json_to({"event": "pusher:unsubscribe", "data": {"channel": channel}})
    await receiver.send_json_to({"event": "pusher:ping", "data": {}})
    assert (await receiver.receive_json_from(timeout=3))["event"] == "pusher:pong"
    await whisper(sender, channel)
    assert await receiver.receive_nothing(0.3)
    await whisper(receiver, channel)
    assert (await error_of(receiver))["message"] == (
        f"Subscribe to {channel} before sending client events on it."
    )
    await sender.disconnect()
    await receiver.disconnect()


async def test_disabled_by_default_with_a_clear_error(tenant):
    channel = f"private-tenant.{tenant.pk}"
    sender, receiver = await subscribed(channel), await subscribed(channel)
    await whisper(sender, channel)
    assert await error_of(sender) == {"code": 4300, "message": "Client events are not enabled."}
    assert await receiver.receive_nothing(0.3)
    await sender.disconnect()
    await receiver.disconnect()


@enabled
@pytest.mark.parametrize(
    ("event", "channel", "message"),
    [
        ("client-typing", "public-chat", ONLY_PRIVATE),
        ("client-typing", None, ONLY_PRIVATE),
        (
            "client-typing",
            "private-tenant.999",
            "Subscribe to private-tenant.999 before sending client events on it.",
        ),
        (
            "client-",
            "private-tenant.1",
            BAD_NAME,
        ),
        (
            "client-a b",
            "private-tenant.1",
            BAD_NAME,
        ),
        (
            "client-" + "x" * 194,
            "private-tenant.1",
            BAD_NAME,
        ),
    ],
)
async def test_refused_client_events_get_pusher_error_4300(event, channel, message):
    comm = await open_socket()
    await established(comm)
    await whisper(comm, channel, event=event)
    assert await error_of(comm) == {"code": 4300, "message": message}
    await comm.send_json_to({"event": "pusher:ping", "data": {}})
    assert (await comm.receive_json_from())["event"] == "pusher:pong", "the socket stays open"
    await comm.disconnect()


@enabled
async def test_oversized_data_is_refused(tenant):
    channel = f"private-tenant.{tenant.pk}"
    sender, receiver = await subscribed(channel), await subscribed(channel)
    await whisper(sender, channel, data={"text": "x" * 10_300})
    assert (await error_of(sender))["code"] == 4300
    assert await receiver.receive_nothing(0.3)
    await sender.disconnect()
    await receiver.disconnect()


@enabled
async def test_more_than_ten_per_second_get_4301_and_are_dropped(tenant):
    channel = f"private-tenant.{tenant.pk}"
    sender, receiver = await subscribed(channel), await subscribed(channel)
    sent = 30  # under the frame limit (a burst of 40), far over 10 per second
    for n in range(sent):
        await whisper(sender, channel, data={"n": n})
    errors = []
    while not await sender.receive_nothing(0.3):
        errors.append(await error_of(sender))
    delivered = []
    while not await receiver.receive_nothing(0.3):
        delivered.append(json.loads((await receiver.receive_json_from())["data"])["n"])
    assert errors, "some of 30 whispers in a burst are over the limit"
    assert all(e["code"] == 4301 for e in errors)
    assert errors[0]["message"] == "Client event rejected: more than 10 per second."
    assert len(delivered) + len(errors) == sent
    assert 10 <= len(delivered) < sent
    assert delivered[:10] == list(range(10)), "the first ten of the burst go through, in order"
    await sender.send_json_to({"event": "pusher:ping", "data": {}})
    assert (await sender.receive_json_from())["event"] == "pusher:pong", "the socket stays open"
    await sender.disconnect()
    await receiver.disconnect()
