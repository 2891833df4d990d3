"""The hot RADIUS lookups (/radius/client/, /radius/authorize/) answered in front of Django.

FreeRADIUS asks these for every Access-Request; Django's request cycle (ASGI handler, one
thread per worker for sync views, the whole middleware stack) costs several times the query
itself. This ASGI wrapper answers the two GET endpoints with the same functions the Django
views use (hotspot.radius_views.answer_*), running them in a small thread pool of its own,
each thread keeping its database connection. Everything else goes to `inner` untouched;
accounting (writes) stays on the Django view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from django.db import InterfaceError, OperationalError, connection

from config.env import env_number

log = logging.getLogger(__name__)

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Any]


def _query(scope: dict) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _answer(path: str, authorization: str, query: dict[str, str]) -> tuple[int, bytes]:
    """The Django view's answer, counted once (hotspot_radius_requests_total) after the retry."""
    from . import radius_views

    kind, handler = radius_views.FAST_HANDLERS[path]

    def reconnecting() -> tuple[int, bytes, str]:
        for attempt in (1, 2):
            try:
                return handler(authorization, query)
            except (OperationalError, InterfaceError):
                connection.close()  # a dropped connection: reconnect once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return radius_views.counted(kind, reconnecting)


class RadiusFastPath:
    def __init__(self, inner: ASGIApp, threads: int | None = None) -> None:
        self.inner = inner
        self.threads = threads or env_number("RADIUS_DB_THREADS", "4", int)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="radius-db")
        return self._pool

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        from .radius_views import FAST_HANDLERS

        if (
            scope["type"] != "http"
            or scope.get("path") not in FAST_HANDLERS
            or scope.get("method") != "GET"
        ):
            await self.inner(scope, receive, send)
            return
        authorization = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
        loop = asyncio.get_running_loop()
        try:
            status, body = await loop.run_in_executor(
                self.pool, _answer, scope["path"], authorization, _query(scope)
            )
        except Exception:
            log.exception("RADIUS lookup %s failed", scope["path"])
            status, body = 500, b""
        headers = [(b"content-length", str(len(body)).encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
