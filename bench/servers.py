"""The servers bench/fanout.py compares the product with (each run as its own OS process).

* ``stock``: stock Channels: a plain group consumer (AsyncWebsocketConsumer, group_add on
  connect, ``self.send(text_data=...)`` per event) on channels-redis's RedisPubSubChannelLayer.
* ``shape``: the same plain consumer on our FanoutChannelLayer (the layer alone, without the
  product's auth; used while the product's consumer is not merged, and as a reference).
* ``bare``: a bare ``websockets`` broadcaster: one Redis subscription, ``websockets.broadcast``.

Both consumers send a ``welcome`` frame once their groups are joined, like the product does, so
the benchmark knows when a socket is ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from urllib.parse import parse_qs

import django
from django.conf import settings

LAYERS = {
    "stock": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "shape": "notifications.realtime.layers.FanoutChannelLayer",
}

if not settings.configured and os.environ.get("BENCH_KIND") in LAYERS:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        INSTALLED_APPS=["channels"],
        ALLOWED_HOSTS=["*"],
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": LAYERS[os.environ["BENCH_KIND"]],
                "CONFIG": {
                    "hosts": [os.environ["REDIS_URL"]],
                    "prefix": os.environ["CHANNELS_PREFIX"],
                    **(
                        {"capacity": int(os.environ["BENCH_CAPACITY"])}
                        if "BENCH_CAPACITY" in os.environ
                        else {}
                    ),
                },
            }
        },
        DATABASES={},
    )
    django.setup()

    from channels.generic.websocket import AsyncWebsocketConsumer

    class GroupConsumer(AsyncWebsocketConsumer):
        """The plain Channels way: join the tenant's group, forward each event's text."""

        async def connect(self) -> None:
            query = parse_qs(self.scope["query_string"].decode())
            self.groups = [f"tenant.{query.get('tenant', ['0'])[0]}"]
            for group in self.groups:
                await self.channel_layer.group_add(group, self.channel_name)
            await self.accept()
            await self.send(text_data=json.dumps({"type": "welcome", "channels": self.groups}))

        async def notify_event(self, message: dict) -> None:
            await self.send(text_data=message["text"])

        async def notify_close(self, message: dict) -> None:
            await self.close(code=message.get("code", 4403))

    from notifications.realtime.layers import LayerEventDispatchMixin

    class FastGroupConsumer(LayerEventDispatchMixin, GroupConsumer):
        """The same with the product's dispatch (LayerEventDispatchMixin)."""

    fast = os.environ["BENCH_KIND"] == "shape" and os.environ.get("BENCH_FAST_DISPATCH") == "1"
    application = (FastGroupConsumer if fast else GroupConsumer).as_asgi()


async def bare_main(port: int, redis_url: str, key: str) -> None:
    """Bare broadcaster: every frame published on `key` goes to every connected socket."""
    import redis.asyncio as aioredis
    import websockets
    from websockets.asyncio.server import serve

    clients: set = set()

    async def handler(ws) -> None:
        clients.add(ws)
        try:
            await ws.send(json.dumps({"type": "welcome"}))
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(key)
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        print("ready", flush=True)
        async for message in pubsub.listen():
            if message["type"] == "message":
                websockets.broadcast(clients, message["data"].decode())


if __name__ == "__main__":
    if sys.argv[1] == "bare":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(bare_main(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
