"""Fixtures for the event pipeline: listen on groups of the configured channel layer.

Tests run against whatever layer settings configure (in-memory on the embedded default, the
real Redis with REDIS_URL), so they stay valid when the layer is swapped.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from notifications.events import relay as publisher

run = database_sync_to_async  # call sync (ORM) code from async tests; closes connections


@dataclass
class Listener:
    """One test channel subscribed to some groups; `collect()` returns what reached it."""

    layer: Any
    channel: str
    groups: list[str] = field(default_factory=list)

    async def collect(self, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Everything received so far: send a probe and read up to it.

        Over Redis the probe goes the way the events came, through one of our groups: Redis
        delivers it after everything published before it. Sent to our own (local) channel it
        would arrive at once, ahead of events still on their way from Redis on a busy machine.
        """
        probe = {"type": "test.probe", "id": secrets.token_hex(8)}
        if self.groups and getattr(self.layer, "is_redis", False):
            await self.layer.group_send(self.groups[0], probe)
        else:
            await self.layer.send(self.channel, probe)
        messages = []
        async with asyncio.timeout(timeout):
            while True:
                message = await self.layer.receive(self.channel)
                if message["type"] == "test.probe":
                    if message.get("id") == probe["id"]:
                        return messages
                    continue  # another listener's probe (it shares the group)
                # notify.close (sockets closed on revocation) is tested by the socket tests
                if message["type"] not in ("test.ready", "notify.close"):
                    messages.append(message)

    async def events(self, timeout: float = 3.0) -> list[tuple[str, dict[str, Any]]]:
        """(event name, decoded frame) of every notify.event received so far."""
        return [
            (json.loads(m["text"])["event"], json.loads(m["text"]))
            for m in await self.collect(timeout)
            if m["type"] == "notify.event"
        ]


async def wait_subscribed(layer: Any, group: str, channel: str, timeout: float = 5) -> None:
    """Wait until a group message reaches `channel` (a pub/sub SUBSCRIBE is asynchronous)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await layer.group_send(group, {"type": "test.ready"})
                async with asyncio.timeout(0.2):
                    while (await layer.receive(channel))["type"] != "test.ready":
                        pass
                return
            except TimeoutError:
                continue
            except Exception:  # the layer's server is not back yet
                await asyncio.sleep(0.1)


async def make_listener(layer: Any, *groups: str) -> Listener:
    """A new channel of `layer` in `groups`, returned once group messages reach it."""
    channel = await layer.new_channel()
    listener = Listener(layer, channel, list(groups))
    for group in groups:
        await layer.group_add(group, channel)
        await wait_subscribed(layer, group, channel)
    return listener


@pytest.fixture
async def listen():
    """`await listen("tenant.3", "system.admin")` → a Listener on those groups."""
    layer = get_channel_layer()
    made: list[Listener] = []

    async def make(*groups: str) -> Listener:
        listener = await make_listener(layer, *groups)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        for group in listener.groups:
            await layer.group_discard(group, listener.channel)
    if hasattr(layer, "flush") and not publisher.layer_crosses_processes(layer):
        await layer.flush()


@pytest.fixture
async def deliver():
    """Publish what the emitting code left for a server (the in-memory layer's path)."""

    async def _deliver() -> int:
        return await publisher.publish_pending()

    return _deliver


@pytest.fixture
async def running_publisher():
    """This process's publisher, on the test's event loop; stopped afterwards."""
    started = publisher.ensure_started()
    yield started
    await publisher.stop()
