"""The socket endpoints' share of the Prometheus metrics (declared in config/metrics.py).

`Metered` (first among a consumer's bases) gives each socket a `meter`: frames sent are counted
in `send` (a process-local tally: one addition per frame), and the socket stops counting as
open however the consumer ends. The consumer says when the socket is open for use
(`meter.opened(role)`), when it overflowed and when it resumed.
"""

from __future__ import annotations

from typing import Any

from config.metrics import SocketMeter


class Metered:
    """Consumer mixin: `self.meter`, frames counted, closed once when the consumer ends."""

    metrics_endpoint: str = ""  # config.metrics.ENDPOINTS

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.meter = SocketMeter(self.metrics_endpoint)
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        finally:
            self.meter.closed()

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)  # type: ignore[misc]
        if text_data is not None or bytes_data is not None:
            self.meter.frames.n += 1
