"""notifications/realtime/gap.py in process: a `notify.resubscribed` makes a Pusher socket replay
what it missed as Pusher events, once each, or say `hotspot:resync`. (Against real Redis
servers, with /ws/notifications/, revocation and presence: test_redis_failover.py.)"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings
from prometheus_client import REGISTRY

from tests.notifications.test_replay import _stored
from tests.notifications.wsutil import committed_db, event_message, group_send
from tests.pusher.test_consumer import authorize, established, open_socket, subscribe

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]

stored = database_sync_to_async(_stored)


async def subscribed(user, tenant):
    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-tenant.{tenant.pk}"
    response = await authorize(user, socket_id, channel)
    reply = await subscribe(comm, socket_id, channel, response.json()["auth"])
    assert reply["event"] == "pusher_internal:subscription_succeeded", reply
    return comm, channel


async def live_after_one_event(user, tenant):
    """A subscribed Pusher socket that has received one live event (where a gap starts)."""
    comm, channel = await subscribed(user, tenant)
    seen = await stored(tenant, position=1)
    await live(tenant, seen.id)
    assert ids_of([await comm.receive_json_from(timeout=3)], channel) == [seen.id]
    return comm, channel


async def live(tenant, event_id: int) -> None:
    group = f"tenant.{tenant.pk}"
    await group_send(group, event_message(group, event_id))


def replayed_count() -> float:
    labels = {"endpoint": "pusher"}
    return REGISTRY.get_sample_value("hotspot_socket_replayed_events_total", labels) or 0.0


def ids_of(frames: list[dict], channel: str) -> list[int]:
    assert all(f["channel"] == channel for f in frames), frames
    return [int(json.loads(f["data"])["id"]) for f in frames]


async def test_a_pusher_socket_replays_the_gap_in_order_and_once(tenant_admin, tenant):
    comm, channel = await live_after_one_event(tenant_admin, tenant)
    # published while the layer was away (never reached this process), in commit order
    late_id_first = await stored(tenant, position=3, message="second")
    early = await stored(tenant, position=2, message="first")
    counted = replayed_count()
    await group_send(f"tenant.{tenant.pk}", {"type": "notify.resubscribed"})
    frames = [await comm.receive_json_from(timeout=3) for _ in range(2)]
    assert ids_of(frames, channel) == [early.id, late_id_first.id]
    for _ in range(300):  # the counter moves once the replay's loop ends
        if replayed_count() - counted >= 2:
            break
        await asyncio.sleep(0.01)
    assert replayed_count() - counted == 2  # the operator sees the gap's replay
    assert [json.loads(f["data"])["message"] for f in frames] == ["first", "second"]
    # a copy still in flight arrives live: not twice; new events flow as before
    await live(tenant, late_id_first.id)
    after = await stored(tenant, position=4)
    await live(tenant, after.id)
    # frames keep their order: a second copy of the replayed event would come before `after`
    assert ids_of([await comm.receive_json_from(timeout=3)], channel) == [after.id]
    await comm.disconnect()


async def test_a_gap_too_long_to_replay_says_hotspot_resync(tenant_admin, tenant):
    comm, channel = await live_after_one_event(tenant_admin, tenant)
    for position in (2, 3):
        await stored(tenant, position=position)
    with override_settings(NOTIFICATIONS_REPLAY_LIMIT=1):
        await group_send(f"tenant.{tenant.pk}", {"type": "notify.resubscribed"})
        frame = await comm.receive_json_from(timeout=3)
    assert frame == {"event": "hotspot:resync", "channel": channel, "data": "{}"}
    await comm.disconnect()


async def test_a_socket_revoked_during_the_gap_is_closed_and_replayed_nothing(staff, tenant):
    comm, _ = await live_after_one_event(staff, tenant)
    await stored(tenant, position=2)
    # deactivated with no close message (as if it was lost in the gap): the re-check finds out
    deactivate = staff.__class__.objects.filter(pk=staff.pk).update
    await database_sync_to_async(deactivate)(is_active=False)
    await group_send(f"tenant.{tenant.pk}", {"type": "notify.resubscribed"})
    frames = []
    while (message := await comm.receive_output(3))["type"] != "websocket.close":
        frames.append(json.loads(message["text"]))
    assert message["code"] == 4009
    assert [f["event"] for f in frames] == ["pusher:error"]


# -- many sockets after one gap: batched re-checks, replays and presence reads ---------------


async def _next_event(comm) -> dict:
    while (frame := await comm.receive_json_from(timeout=5))["type"] != "event":
        pass
    return frame


async def _event_or_close(comm) -> int | str:
    """The replayed event's id, or the close code the client saw."""
    while True:
        message = await comm.receive_output(5)
        if message["type"] == "websocket.close":
            return message["code"]
        frame = json.loads(message["text"])
        if frame["type"] == "event":
            return str(frame["id"])


async def test_many_sockets_after_a_gap_share_thread_hops_and_the_revoked_ones_close(
    tenant_admin, staff, tenant, settings
):
    """N sockets re-check, replay and re-read presence in a bounded number of thread hops
    (was 3 per socket: 10,000 hops at 10,000 sockets); rights revoked during the gap still
    close their sockets, which are replayed nothing."""
    settings.NOTIFICATIONS_PRESENCE_TTL = 1  # the presence re-sync waits half of it (rejoin_wait)
    from tests.notifications.wsutil import communicator, session_cookie

    admin_cookie, staff_cookie = await session_cookie(tenant_admin), await session_cookie(staff)
    comms = [communicator(cookie=admin_cookie) for _ in range(10)]
    comms += [communicator(cookie=staff_cookie) for _ in range(5)]
    for comm in comms:
        assert (await comm.connect(timeout=5))[0]
        await comm.send_json_to({"action": "presence", "channel": f"tenant.{tenant.pk}"})
    seen = await stored(tenant, position=1)
    await live(tenant, seen.id)
    for comm in comms:
        assert (await _next_event(comm))["id"] == str(seen.id)
    missed = await stored(tenant, position=2)  # published while the layer was away
    deactivate = staff.__class__.objects.filter(pk=staff.pk).update
    await database_sync_to_async(deactivate)(is_active=False)  # its close message was lost

    loop = asyncio.get_running_loop()
    hops = 0
    real = loop.run_in_executor

    def counting(*args, **kwargs):
        nonlocal hops
        hops += 1
        return real(*args, **kwargs)

    from django.db.backends.utils import CursorWrapper

    queries = 0
    real_execute = CursorWrapper.execute

    def counted(self, *args, **kwargs):
        nonlocal queries
        queries += 1
        return real_execute(self, *args, **kwargs)

    loop.run_in_executor = counting
    CursorWrapper.execute = counted
    try:
        await group_send(f"tenant.{tenant.pk}", {"type": "notify.resubscribed"})
        outcomes = await asyncio.gather(*(_event_or_close(c) for c in comms))
        for comm in comms[:10]:  # the presence re-sync follows the replay
            while (await comm.receive_json_from(timeout=5))["type"] != "presence":
                pass
    finally:
        del loop.run_in_executor
        CursorWrapper.execute = real_execute
    assert outcomes == [str(missed.id)] * 10 + [4401] * 5
    # A few batches (re-check, replay, presence; measured 3), not 3 per socket (measured 37):
    # the bound leaves room for questions a loaded machine spreads over more runs.
    assert hops < len(comms), hops
    # Two credentials and one replay position: reads per distinct question, not per socket
    # (measured 11 here; 97 when each socket asked on its own).
    assert queries < 3 * len(comms), queries
    for comm in comms:
        await comm.disconnect()


def test_tabs_replaying_together_share_a_read_and_each_skips_what_it_caused(
    staff, tenant, django_assert_num_queries
):
    """An event sent toOthers by one tab (its form post) is replayed to the person's other tabs,
    never to the tab that caused it, though the tabs share one read of the store."""
    from notifications.realtime.gap import _missed_many

    seen = _stored(tenant, position=1)
    caused = _stored(tenant, position=2, exclude_socket_id="tab-a")
    other = _stored(tenant, position=3)
    channels = (f"tenant.{tenant.pk}",)
    with django_assert_num_queries(4):  # account, seen event, window, targets: once for both
        tab_a, tab_b = _missed_many(
            [(staff.pk, seen.id, channels, "tab-a"), (staff.pk, seen.id, channels, "tab-b")]
        )
    assert tab_a.ids == [other.id]
    assert tab_b.ids == [caused.id, other.id]


async def test_a_gap_after_more_events_than_4096_resends_none_the_socket_had(
    settings, redis_url, tenant_admin, tenant, other_tenant
):
    """The socket got two events out of position order (a faster publisher), then its
    process received 5,000 events of another tenant: the replay after the gap still knows
    the first was delivered (NOTIFICATIONS_GAP_RECENT_EVENTS; it was a fixed 4,096)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "notifications.realtime.layers.FanoutChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"gap-{uuid.uuid4().hex[:8]}"},
        }
    }
    comm, channel = await subscribed(tenant_admin, tenant)
    ahead, behind = await stored(tenant, position=3), await stored(tenant, position=2)
    for event in (ahead, behind):
        await live(tenant, event.id)
    assert ids_of([await comm.receive_json_from(timeout=3) for _ in range(2)], channel) == [
        ahead.id,
        behind.id,
    ]
    layer = get_channel_layer()
    busy, group = await layer.new_channel(), f"tenant.{other_tenant.pk}"
    await layer.group_add(group, busy)
    for start in range(0, 5000, 500):
        batch = range(10**6 + start, 10**6 + start + 500)
        await layer.group_send_many([(group, event_message(group, i)) for i in batch])
        while (await layer.receive(busy)).get("id") != batch[-1]:
            pass  # read as it comes, so the busy channel never overflows
    missed = await stored(tenant, position=4)  # published while the layer was away
    await group_send(f"tenant.{tenant.pk}", {"type": "notify.resubscribed"})
    # in position order a second copy of `ahead` would come first
    assert ids_of([await comm.receive_json_from(timeout=3)], channel) == [missed.id]
    await comm.disconnect()
