"""Request-body limits enforced while the body is read (ASGI), before Django buffers it.

Django's ASGI handler reads a whole body (into memory, then a temporary file) before any view
runs, and DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is checked only afterwards; a chunked body
has no Content-Length to refuse up front. For paths with a small limit of their own (the
payment callback: 16 KiB, payments.api.MAX_CALLBACK_BYTES) this middleware answers 413 as soon
as the declared length, or the bytes received so far, pass the limit, and closes the exchange
without reading the rest. Everything else passes through untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from config.clientip import scope_client_ip

logger = logging.getLogger("config.bodylimit")


def _content_length(scope: Mapping[str, Any]) -> int | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class BodyLimitMiddleware:
    """ASGI middleware: `limits` maps an exact path to its largest accepted body, in bytes."""

    def __init__(self, application: Any, limits: Mapping[str, int]) -> None:
        self.application = application
        self.limits = dict(limits)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        limit = self.limits.get(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            return await self.application(scope, receive, send)
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            return await self._refuse(scope, send, limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client gave up; nothing to answer
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                return await self._refuse(scope, send, limit)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.application(scope, replay, send)

    async def _refuse(self, scope: Mapping[str, Any], send: Any, limit: int) -> None:
        logger.warning(
            "%s %s from %s: body over %d bytes refused while reading",
            scope.get("method"),
            scope.get("path"),
            scope_client_ip(scope),
            limit,
        )
        body = json.dumps(
            {"error": {"code": "too_large", "message": f"The body is over {limit} bytes."}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
