"""`/ws/portal/?token=<token>`: an anonymous customer's socket for their own payment only.

The payment's token is the only key: it joins `payment.<id>` and nothing else. It sends
`{"type":"payment","state":...}` frames (the same dict as GET /portal/status/<token>/, with the
credentials once completed); every client frame except `{"type":"ping"}` gets an error, and a
flood closes it (4429), counted as frames arrive (limits.ArrivalLimit, like the other endpoints:
frames queued behind a slow send are not handled after the limit is hit). An unknown or
expired token gets an error frame and close 4403.
Catalog events on the payment's group only say "changed"; the frame is built from the payment
(one query per change of one payment), so credentials never travel in stored events.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from notifications.conf import notification_settings as conf
from notifications.realtime import access
from notifications.realtime.groups import payment_group
from notifications.realtime.limits import ArrivalLimit
from notifications.realtime.metering import Metered
from notifications.realtime.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_SLOW,
    loads,
)


@database_sync_to_async
def _payment_for_token(token: str) -> int | None:
    return access.policy.payment_for_token(token)


@database_sync_to_async
def _state_of(payment_id: int) -> dict[str, Any] | None:
    return access.policy.payment_state(payment_id)


class PortalPaymentConsumer(Metered, ArrivalLimit, AsyncWebsocketConsumer):
    metrics_endpoint = "portal"
    payment_id: int | None = None
    _closed = False

    async def connect(self) -> None:
        self.payment_id = None
        self.last_state: str | None = None
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        payment_id = await _payment_for_token(token) if token else None
        if payment_id is None:
            await self._error("invalid_token", "This payment link is unknown or has expired.")
            await self.close(CLOSE_FORBIDDEN)
            return
        self.payment_id = payment_id
        self.meter.opened("customer")
        self.groups = [payment_group(payment_id)]  # discarded by Channels on disconnect
        await self.channel_layer.group_add(self.groups[0], self.channel_name)
        await self._send_state()

    async def _send_state(self) -> None:
        if self.payment_id is None or self._closed:
            return
        state = await _state_of(self.payment_id)
        if state is None or state["state"] == self.last_state:  # unchanged: nothing to say
            return
        self.last_state = state["state"]
        await self.send(text_data=json.dumps(state))

    async def notify_event(self, message: dict) -> None:
        """Our payment changed: send its state (once per change)."""
        await self._send_state()

    async def notify_close(self, message: dict) -> None:
        if message.get("code") == CLOSE_TOO_SLOW:
            self.meter.overflowed()
        await self.close(CLOSE_FORBIDDEN)

    async def notify_resubscribed(self, message: dict) -> None:
        """The layer's Redis subscription was lost and is back: a change may have been missed."""
        await self._send_state()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.payment_id is None or self._closed:
            return
        if text_data is None or len(text_data.encode()) > conf.WS_MAX_FRAME_BYTES:
            await self._error("bad_frame", "Send small JSON text frames.")
            return
        try:
            frame = loads(text_data)
        except ValueError:  # TooDeep included: a 2,000-deep array is just not a frame here
            await self._error("bad_json", "That frame is not JSON.")
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))
            return
        await self._error(
            "not_allowed", "This socket follows its own payment only; it takes no other frames."
        )

    async def _flooded(self) -> None:
        """ArrivalLimit: more frames arrived than NOTIFICATIONS_WS_BURST/RATE allow."""
        if self._closed:
            return
        self._closed = True
        await self._error("rate_limited", "Too many frames.")
        await self.close(CLOSE_RATE_LIMITED)

    async def _error(self, code: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))
