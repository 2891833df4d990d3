"""The one ASGI middleware that starts a server process's background work.

Two loops run inside every server process: the outbox publisher (notifications/events/relay.py:
stored events to the channel layer) and the periodic runner (config/periodic.py: expiry,
payment sweeps, SMS, the email outbox, RADIUS cut-off retries); beside them the metrics
sampler (config/metrics.py: frame tallies, presence entries, the layer's Redis stats) and the
presence tracker's heartbeat (stopped at shutdown so that announcements the closing loop cuts
short start no task on it).
`BackgroundMiddleware` answers the ASGI lifespan protocol itself (the inner ProtocolTypeRouter
has none), so it sits outermost in config/asgi.py. `on_startup` runs once per process before
anything is served: on lifespan startup under uvicorn (an exception fails the start-up), else on
the first connection (daphne has no lifespan); then the loops start, and they stop on lifespan
shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from config import metrics, periodic
from notifications.events import relay
from notifications.realtime import presence

logger = logging.getLogger(__name__)


async def _start() -> None:
    relay.ensure_started()
    periodic.ensure_started()
    metrics.sampler.start()


async def _stop() -> None:
    await periodic.stop()
    await relay.stop()
    await metrics.sampler.stop()
    await presence.stop_trackers()


class BackgroundMiddleware:
    """ASGI wrapper: runs `on_startup` once, then keeps the publisher and the runner going."""

    def __init__(
        self, app: Callable[..., Awaitable[None]], on_startup: Callable[[], None] | None = None
    ) -> None:
        self.app = app
        self.on_startup = on_startup
        self._started = False

    def _start_once(self) -> None:
        if not self._started:
            self._started = True
            if self.on_startup is not None:
                self.on_startup()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        self._start_once()
                    except Exception as exc:
                        logger.exception("server start-up failed")
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await _start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await _stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self._start_once()
        await _start()  # daphne: on every connection (cheap once running)
        await self.app(scope, receive, send)
