"""Redis down: the request still succeeds, the event waits in the store, and arrives exactly once
when Redis is back. A real redis-server on a spare port, stopped and restarted by the test.

The layer is the one settings configure (its BACKEND and CONFIG, pointed at the spare server),
so the test keeps holding when the channel layer implementation is swapped.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import Iterator

import pytest
from channels.layers import get_channel_layer

from notifications.events import relay as publisher
from notifications.models import StoredEvent
from tenants import services as tenants
from tests.conftest import require_program
from tests.liveserver import RedisServer
from tests.notifications.conftest import make_listener, run, wait_subscribed

pytestmark = [pytest.mark.redis, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def spare_redis(redis_url) -> Iterator[RedisServer]:
    require_program("redis-server")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def layer_on_spare_redis(settings, spare_redis):
    """The product's Redis layer on the spare server (the embedded default's local layer takes
    no Redis, so the pass without REDIS_URL tests the layer production runs)."""
    layer_config = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
    if not layer_config.get("CONFIG", {}).get("hosts"):
        layer_config = {"BACKEND": "notifications.realtime.layers.FanoutChannelLayer", "CONFIG": {}}
    layer_config.setdefault("CONFIG", {})
    layer_config["CONFIG"]["hosts"] = [spare_redis.url]
    layer_config["CONFIG"]["prefix"] = f"outage-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": layer_config}  # resets channels' cached layers
    settings.NOTIFICATIONS_SEND_TIMEOUT_SECONDS = 1.0
    settings.NOTIFICATIONS_RETRY_MAX_SECONDS = 0.3
    yield get_channel_layer()


async def test_event_emitted_while_redis_is_down_arrives_once_it_is_back(
    tenant, spare_redis, layer_on_spare_redis
):
    layer = layer_on_spare_redis
    group = f"tenant.{tenant.pk}"
    listener = await make_listener(layer, group)

    spare_redis.stop()
    begin = time.monotonic()
    suspended = await run(tenants.tenant_suspend)(tenant=tenant, reason="Unpaid", by=None)
    assert suspended.status == "suspended"  # the request succeeded, without waiting for Redis
    assert time.monotonic() - begin < 5
    row = await run(StoredEvent.objects.get)()
    assert (row.name, row.published_at) == ("TenantSuspended", None)
    assert row.publish_attempts == 0  # publishing is the publisher's work, not the request's

    begin = time.monotonic()
    await run(tenants.tenant_update)(tenant=suspended, data={"name": "Acme 2"}, by=None)
    assert time.monotonic() - begin < 5  # (a busy machine's transaction, not a Redis timeout)
    updated = await run(StoredEvent.objects.get)(name="TenantUpdated")
    assert (updated.publish_attempts, updated.published_at) == (0, None)

    # A server's publisher keeps trying while Redis is down, and gives the row back each time.
    running = publisher.ensure_started()
    assert running is not None
    attempts = StoredEvent.objects.filter(pk=row.pk).values_list("publish_attempts", flat=True)
    async with asyncio.timeout(20):  # two attempts and back-offs, however busy the machine
        while (await run(attempts.get)()) < 2:
            await asyncio.sleep(0.05)
    await publisher.stop()
    row = await run(StoredEvent.objects.get)(pk=row.pk)
    assert row.published_at is None and row.publish_attempts >= 2

    spare_redis.start()
    await wait_subscribed(layer, group, listener.channel, timeout=15)
    publisher.ensure_started()
    try:
        events = []
        async with asyncio.timeout(10):
            while len(events) < 2:
                events += await listener.events()
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.6)  # a few more publisher rounds: nothing is sent twice
        events += await listener.events()
    finally:
        await publisher.stop()
    # Each exactly once, in order (TenantUpdated carries roles: the consumer filters by them).
    assert [(name, frame["id"]) for name, frame in events] == [
        ("TenantSuspended", row.id),
        ("TenantUpdated", updated.id),
    ]
    assert events[0][1]["data"]["reason"] == "Unpaid"
    assert not await run(StoredEvent.objects.filter(published_at__isnull=True).exists)()
