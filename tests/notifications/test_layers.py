"""The fan-out channel layer: Channels layer conformance on both modes, plus what it adds.

Redis-mode tests use the real Redis (``redis_url``) with a prefix of their own (pub/sub channel
names are global across Redis databases), a second OS process for cross-process delivery, and a
real redis-server on a spare port that is stopped and restarted.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
from channels.exceptions import ChannelFull

from notifications.realtime.layers import (
    FanoutChannelLayer,
    LayerUnavailable,
    LocalFanoutChannelLayer,
)
from tests.conftest import require_program
from tests.liveserver import RedisCutProxy, RedisServer

ROOT = Path(__file__).resolve().parents[2]
EVENT = {"type": "notify.event", "id": 1, "text": '{"type":"event","id":"1"}', "roles": None}


def _prefix() -> str:
    return f"{os.environ.get('CHANNELS_PREFIX', 'test')}.layer.{secrets.token_hex(4)}"


@pytest.fixture(params=["local", "redis"])
def make_layer(request):
    """Factory of layers for one mode (each test flushes its layer in its own loop)."""
    prefix = _prefix()
    if request.param == "local":
        return lambda **config: LocalFanoutChannelLayer(prefix=prefix, **config)
    hosts = [request.getfixturevalue("redis_url")]

    def make(**config) -> FanoutChannelLayer:
        return FanoutChannelLayer(hosts=hosts, prefix=prefix, **config)

    return make


async def _receive(layer, channel, timeout=2.0):
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def _nothing_for(layer, channel, seconds=0.2):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), seconds)


async def test_send_receive_on_a_new_channel(make_layer):
    layer = make_layer()
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "test.message", "text": "Ahoy-hoy!"})
        assert await _receive(layer, channel) == {"type": "test.message", "text": "Ahoy-hoy!"}
    finally:
        await layer.flush()


async def test_messages_arrive_in_order(make_layer):
    layer = make_layer()
    try:
        channel = await layer.new_channel()
        for i in range(50):
            await layer.send(channel, {"type": "test.message", "n": i})
        assert [(await _receive(layer, channel))["n"] for _ in range(50)] == list(range(50))
    finally:
        await layer.flush()


async def test_receive_waits_for_a_later_send(make_layer):
    layer = make_layer()
    try:
        channel = await layer.new_channel()
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await layer.send(channel, {"type": "test.message"})
        assert (await asyncio.wait_for(waiting, 2))["type"] == "test.message"
    finally:
        await layer.flush()


async def test_group_send_reaches_every_member_once_and_discard_stops_it(make_layer):
    layer = make_layer()
    try:
        members = [await layer.new_channel() for _ in range(300)]
        outsider = await layer.new_channel()
        for channel in members:
            await layer.group_add("tenant.3", channel)
        await layer.group_send("tenant.3", EVENT)
        for channel in members:
            assert await _receive(layer, channel) == EVENT
        await _nothing_for(layer, outsider)

        await layer.group_discard("tenant.3", members[0])
        await layer.group_discard("tenant.3", outsider)  # not a member: no error
        await layer.group_send("tenant.3", dict(EVENT, id=2))
        assert (await _receive(layer, members[1]))["id"] == 2
        await _nothing_for(layer, members[0])
        await _nothing_for(layer, members[1])  # exactly once
    finally:
        await layer.flush()


async def test_group_send_many_delivers_in_order_to_each_group(make_layer):
    """The outbox publisher's batch send: one pipelined round trip in Redis mode, the same
    order and the same members as one group_send after the other."""
    layer = make_layer()
    try:
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("tenant.1", a)
        await layer.group_add("tenant.2", b)
        await layer.group_add("tenant.2", a)
        await layer.group_send_many(
            [("tenant.1", dict(EVENT, id=1)), ("tenant.2", dict(EVENT, id=2))]
            + [("tenant.1", dict(EVENT, id=n)) for n in range(3, 40)]
        )
        assert [(await _receive(layer, a))["id"] for _ in range(39)] == list(range(1, 40))
        assert (await _receive(layer, b))["id"] == 2
        await _nothing_for(layer, b)
    finally:
        await layer.flush()


async def test_group_send_many_checks_every_group_before_sending_any(make_layer):
    """A bad group name anywhere in the batch sends nothing (the publisher then retries the
    batch one event at a time to isolate it)."""
    layer = make_layer()
    try:
        channel = await layer.new_channel()
        await layer.group_add("tenant.1", channel)
        with pytest.raises((TypeError, ValueError)):
            await layer.group_send_many([("tenant.1", EVENT), ("not a valid group!", EVENT)])
        await _nothing_for(layer, channel)
    finally:
        await layer.flush()


async def test_group_send_to_an_empty_group_is_fine(make_layer):
    layer = make_layer()
    try:
        await layer.group_send("tenant.999", EVENT)
    finally:
        await layer.flush()


async def test_a_later_change_to_the_sent_dict_does_not_reach_receivers(make_layer):
    layer = make_layer()
    try:
        channel = await layer.new_channel()
        await layer.group_add("user.7", channel)
        message = dict(EVENT)
        await layer.group_send("user.7", message)
        message["text"] = "changed"
        assert (await _receive(layer, channel))["text"] == EVENT["text"]
    finally:
        await layer.flush()


async def test_receive_nowait_drains_what_is_queued_without_waiting(make_layer):
    layer = make_layer()
    try:
        channel = await layer.new_channel()
        assert layer.receive_nowait(channel) is None
        await layer.group_add("tenant.2", channel)
        for i in range(3):
            await layer.group_send("tenant.2", dict(EVENT, id=i))
        assert (await _receive(layer, channel))["id"] == 0
        drained: list[int] = []
        async with asyncio.timeout(30):  # the other two arrive (Redis mode), then wait in it
            while len(drained) < 2:
                message = layer.receive_nowait(channel)
                if message is None:
                    await asyncio.sleep(0.01)
                else:
                    drained.append(message["id"])
        assert drained == [1, 2]
        assert layer.receive_nowait(channel) is None
    finally:
        await layer.flush()


async def test_invalid_names_are_refused(make_layer):
    layer = make_layer()
    try:
        with pytest.raises(TypeError):
            await layer.group_add("bad group!", await layer.new_channel())
        with pytest.raises(TypeError):
            await layer.send("bad channel name ", {"type": "x"})
        with pytest.raises(TypeError):
            await layer.group_send("x" * 200, EVENT)
        with pytest.raises(AssertionError):
            await layer.group_send("tenant.1", "not a dict")
    finally:
        await layer.flush()


async def test_direct_send_to_a_full_local_channel_raises_channel_full(make_layer):
    layer = make_layer(capacity=3)
    try:
        channel = await layer.new_channel()
        for _ in range(3):
            await layer.send(channel, {"type": "test.message"})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"type": "test.message"})
    finally:
        await layer.flush()


async def test_a_member_too_far_behind_is_disconnected_without_stalling_the_others(make_layer):
    """The slow channel gets one notify.close (4408) and leaves its groups; the others get all."""
    layer = make_layer(capacity=5)
    try:
        slow, fast = await layer.new_channel(), await layer.new_channel()
        for channel in (slow, fast):
            await layer.group_add("tenant.1", channel)
            await layer.group_add("user.1", channel)
        got = []
        for i in range(12):
            await layer.group_send("tenant.1", dict(EVENT, id=i))
            got.append((await _receive(layer, fast))["id"])
        assert got == list(range(12))
        assert await _receive(layer, slow) == {
            "type": "notify.close",
            "code": 4408,
            "reason": "too slow",
        }
        await _nothing_for(layer, slow)
        # It left every group (its queue is gone); the fast member still gets events.
        await layer.group_send("user.1", dict(EVENT, id=99))
        assert (await _receive(layer, fast))["id"] == 99
        await _nothing_for(layer, slow)
        assert layer.overflows == 1
    finally:
        await layer.flush()


async def test_flush_forgets_groups_and_queued_messages(make_layer):
    layer = make_layer()
    try:
        channel = await layer.new_channel()
        await layer.group_add("tenant.1", channel)
        await layer.send(channel, {"type": "queued"})
        await layer.flush()
        await layer.group_send("tenant.1", EVENT)
        await _nothing_for(layer, channel)
        fresh = await layer.new_channel()
        await layer.send(fresh, {"type": "after.flush"})
        assert (await _receive(layer, fresh))["type"] == "after.flush"
    finally:
        await layer.flush()


def test_settings_pick_the_layer_by_redis_url(settings):
    """REDIS_URL → the Redis mode (crosses processes); none → the process-local class."""
    from channels.layers import InMemoryChannelLayer, channel_layers

    layer = channel_layers.make_backend("default")
    if settings.REDIS_URL:
        assert type(layer) is FanoutChannelLayer and layer.crosses_processes
    else:
        assert isinstance(layer, LocalFanoutChannelLayer) and not layer.crosses_processes
        assert isinstance(layer, InMemoryChannelLayer)


def test_a_local_layer_refuses_hosts():
    with pytest.raises(ValueError):
        LocalFanoutChannelLayer(hosts=["redis://127.0.0.1:6379/0"])


# ---------------------------------------------------------------- Redis mode only


@pytest.fixture
def redis_layer(redis_url):
    return FanoutChannelLayer(hosts=[redis_url], prefix=_prefix())


def _numsub(url: str, key: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return dict(client.pubsub_numsub(key))[key.encode()]
    finally:
        client.close()


async def test_one_redis_subscription_per_group_per_process(redis_layer, redis_url):
    layer = redis_layer
    key = f"{layer.prefix}:g:tenant.5"
    try:
        members = [await layer.new_channel() for _ in range(100)]
        for channel in members:
            await layer.group_add("tenant.5", channel)
        assert _numsub(redis_url, key) == 1
        for channel in members[:-1]:
            await layer.group_discard("tenant.5", channel)
        assert _numsub(redis_url, key) == 1
        await layer.group_discard("tenant.5", members[-1])
        await asyncio.sleep(0.1)
        assert _numsub(redis_url, key) == 0
    finally:
        await layer.flush()


async def test_group_add_of_another_process_channel_is_refused(redis_layer):
    try:
        with pytest.raises(RuntimeError):
            await redis_layer.group_add("tenant.1", "specific.0123456789abcdef!abc")
    finally:
        await redis_layer.flush()


SENDER = textwrap.dedent(
    """
    import asyncio, sys
    from notifications.realtime.layers import FanoutChannelLayer

    async def main(url, prefix, channel):
        layer = FanoutChannelLayer(hosts=[url], prefix=prefix)
        await layer.group_send("tenant.3", {"type": "notify.event", "id": 7, "text": "{}"})
        await layer.send(channel, {"type": "direct.message", "from": "other process"})
        await layer.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_another_os_process_reaches_groups_and_specific_channels(redis_layer, redis_url):
    layer = redis_layer
    try:
        member, bystander = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("tenant.3", member)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SENDER, redis_url, layer.prefix, member, cwd=ROOT
        )
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        assert (await _receive(layer, member, 5))["id"] == 7
        assert await _receive(layer, member, 5) == {
            "type": "direct.message",
            "from": "other process",
        }
        await _nothing_for(layer, bystander)
    finally:
        await layer.flush()


@pytest.fixture
def spare_redis(redis_url, tmp_path):
    """A real redis-server of our own on a spare port, which the test may stop and restart."""
    require_program("redis-server")
    server = RedisServer(dir=tmp_path).start()
    yield server
    server.stop()


async def _until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_redis_restart_refuses_sends_while_down_then_resubscribes(spare_redis):
    layer = FanoutChannelLayer(hosts=[spare_redis.url], prefix="restart")
    try:
        channels = [await layer.new_channel() for _ in range(3)]
        for i, channel in enumerate(channels):
            await layer.group_add(f"tenant.{i}", channel)
        await layer.group_send("tenant.0", EVENT)
        assert (await _receive(layer, channels[0]))["id"] == 1

        spare_redis.stop()
        await _until(lambda: not layer.healthy)
        with pytest.raises(LayerUnavailable):
            await layer.group_send("tenant.0", dict(EVENT, id=2))

        spare_redis.start()
        await _until(lambda: layer.healthy)
        assert layer.stats["reconnects"] == 1 and layer.stats["resubscribes"] == 1
        for i, channel in enumerate(channels):
            await layer.group_send(f"tenant.{i}", dict(EVENT, id=10 + i))
            # First the notice that the subscription had a gap (the consumer replays), then
            # what was published after it.
            assert await _receive(layer, channel, 5) == {"type": "notify.resubscribed"}
            assert (await _receive(layer, channel, 5))["id"] == 10 + i
        # The refused event was never delivered: the caller still holds it, nothing is doubled.
        for channel in channels:
            await _nothing_for(layer, channel)
    finally:
        await layer.flush()


async def test_group_send_many_with_redis_down_raises_layer_unavailable(spare_redis):
    spare_redis.stop()
    layer = FanoutChannelLayer(hosts=[spare_redis.url], prefix="down-many")
    try:
        with pytest.raises(LayerUnavailable):
            await layer.group_send_many([("tenant.1", EVENT), ("tenant.2", EVENT)])
    finally:
        await layer.flush()


async def test_a_pipeline_cut_part_way_resends_only_what_redis_did_not_take(spare_redis):
    """The connection breaks after Redis took 4 of 10 PUBLISHes: the retry sends the other 6,
    so each subscriber gets every message once (Pusher clients have no dedup by id)."""
    proxy = RedisCutProxy(("127.0.0.1", spare_redis.port), cut_after=4)
    proxy.start()
    sender = FanoutChannelLayer(hosts=[f"redis://127.0.0.1:{proxy.port}/0"], prefix="cut")
    receiver = FanoutChannelLayer(hosts=[spare_redis.url], prefix="cut")
    try:
        member = await receiver.new_channel()
        await receiver.group_add("tenant.1", member)
        await sender.group_send_many([("tenant.1", dict(EVENT, id=i)) for i in range(10)])
        assert proxy.cut.is_set()  # the first connection was cut part-way
        assert [(await _receive(receiver, member))["id"] for _ in range(10)] == list(range(10))
        await _nothing_for(receiver, member)  # and no second copy of the first four
    finally:
        proxy.stop()
        await sender.flush()
        await receiver.flush()


async def test_a_pipeline_that_fails_twice_says_which_messages_redis_took(spare_redis):
    proxy = RedisCutProxy(("127.0.0.1", spare_redis.port), cut_after=3, then_refuse=True)
    proxy.start()
    layer = FanoutChannelLayer(hosts=[f"redis://127.0.0.1:{proxy.port}/0"], prefix="cut2")
    try:
        with pytest.raises(LayerUnavailable) as raised:
            await layer.group_send_many([("tenant.1", dict(EVENT, id=i)) for i in range(5)])
        assert raised.value.taken == {0, 1, 2}  # the caller resends only 3 and 4
    finally:
        proxy.stop()
        await layer.flush()


async def test_group_send_with_redis_down_from_the_start_raises(spare_redis):
    spare_redis.stop()
    layer = FanoutChannelLayer(hosts=[spare_redis.url], prefix="down")
    try:
        with pytest.raises(LayerUnavailable):
            await layer.group_send("tenant.1", EVENT)
    finally:
        await layer.flush()


async def test_a_silent_subscription_is_found_dead_and_local_channels_are_told(spare_redis):
    """CLIENT PAUSE: the connection stays open and answers nothing. The health check finds it
    dead, the layer resubscribes and, before anything read on the new connection, tells each
    channel in a group (not the others), and counts it all in `stats`."""
    layer = FanoutChannelLayer(hosts=[spare_redis.url], prefix="paused", health_check_interval=0.5)
    admin = redis.Redis.from_url(spare_redis.url)
    try:
        member, loner = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("tenant.1", member)
        await layer.group_send("tenant.1", EVENT)
        assert (await _receive(layer, member))["id"] == 1
        admin.execute_command("CLIENT", "PAUSE", 2500, "ALL")
        await _until(lambda: layer.stats["resubscribes"] == 1, timeout=20)
        assert layer.stats["dead_subscriptions"] == 1
        assert layer.stats["reconnects"] == 1
        await layer.group_send("tenant.1", dict(EVENT, id=2))
        assert await _receive(layer, member, 5) == {"type": "notify.resubscribed"}
        assert (await _receive(layer, member, 5))["id"] == 2
        assert layer.last_event_id == 2
        await _nothing_for(layer, loner)
    finally:
        admin.close()
        await layer.flush()


async def test_a_waiting_receivers_sink_takes_a_turns_messages_together_or_declines_them():
    """set_sink (direct delivery): while the receiver waits, the messages of one turn go to its
    sink in order and the receiver keeps waiting; a sink that declines changes nothing."""
    layer = LocalFanoutChannelLayer(prefix=_prefix())
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        taken: list[list[int]] = []
        accept = [True]

        def sink(messages):
            if accept[0]:
                taken.append([m["n"] for m in messages])
            return accept[0]

        layer.set_sink(channel, sink)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        assert layer.receive_into(channel, fut)
        for n in range(3):
            await layer.group_send("room", {"type": "room.event", "n": n})
        for _ in range(5):
            await asyncio.sleep(0)
        assert taken == [[0, 1, 2]] and not fut.done()
        accept[0] = False
        for n in range(3, 6):
            await layer.group_send("room", {"type": "room.event", "n": n})
        assert (await asyncio.wait_for(fut, 2))["n"] == 3
        assert [layer.receive_nowait(channel)["n"] for _ in range(2)] == [4, 5]
        assert taken == [[0, 1, 2]]
    finally:
        await layer.flush()


async def test_a_failing_sink_wakes_its_receiver_instead_and_the_others_still_get_theirs():
    layer = LocalFanoutChannelLayer(prefix=_prefix())
    try:
        broken, fine = await layer.new_channel(), await layer.new_channel()
        got: list[int] = []
        for channel in (broken, fine):
            await layer.group_add("room", channel)
        layer.set_sink(broken, lambda messages: 1 / 0)
        layer.set_sink(fine, lambda messages: got.extend(m["n"] for m in messages) or True)
        loop = asyncio.get_running_loop()
        waiting = {channel: loop.create_future() for channel in (broken, fine)}
        for channel, fut in waiting.items():
            assert layer.receive_into(channel, fut)
        await layer.group_send("room", {"type": "room.event", "n": 1})
        assert (await asyncio.wait_for(waiting[broken], 2))["n"] == 1
        assert got == [1] and not waiting[fine].done()
    finally:
        await layer.flush()
