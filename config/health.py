"""Liveness (`GET /healthz`) and readiness (`GET /readyz`) for load balancers and orchestrators.

Answered by the outermost middleware, before the host check, the HTTPS redirect, sessions and
authentication: a load balancer polls a worker by its address over plain HTTP, and a poll costs
one indexed query and a few attribute reads. Bodies name checks and exception classes only,
never hosts, URLs or messages (no secrets). docs/operations.md says what each check means.

- liveness: the process answers (nothing else is touched).
- readiness, 200 when every check passes, else 503, one entry per check:
  ``database`` (the query below answers within the timeout), ``channel_layer`` (with Redis: this
  worker's subscription connection is up), ``publisher`` (this worker's outbox publisher task
  runs), ``outbox`` (the oldest unpublished event that is still to be pushed live is younger
  than ``HEALTH_OUTBOX_MAX_AGE_SECONDS``), ``periodic`` (this worker's periodic runner loop
  runs and its current tick has not run longer than ``HEALTH_PERIODIC_STALL_SECONDS``; passes
  when the runner is turned off).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.decorators import sync_and_async_middleware

from config import periodic
from notifications.events.outbox import max_age as publish_max_age
from notifications.events.relay import current as current_publisher
from notifications.models import StoredEvent

logger = logging.getLogger(__name__)
RunDb = Callable[[Callable[[], Any]], Awaitable[Any]]

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"

# One thread with its own database connection: a poll never waits behind request threads, and
# a hung database holds up only this thread (the check times out instead).
_db_executor = ThreadPoolExecutor(1, thread_name_prefix="readiness-db")
# Per layer object: the channel whose creation started the layer's subscription reader.
_probe_channels: dict[int, str] = {}


def outbox_max_age() -> float:
    return float(getattr(settings, "HEALTH_OUTBOX_MAX_AGE_SECONDS", 60.0))


def check_timeout() -> float:
    return float(getattr(settings, "HEALTH_CHECK_TIMEOUT_SECONDS", 3.0))


def periodic_stall() -> float:
    return float(getattr(settings, "HEALTH_PERIODIC_STALL_SECONDS", periodic.LEASE_SECONDS))


def _oldest_unpublished() -> datetime | None:
    """occurred_at of the oldest event the publisher still has to send (one indexed query).

    Rows past the publish max age are never pushed live (they stay stored for replay), so they
    are not a backlog.
    """
    try:
        return StoredEvent.objects.filter(
            published_at__isnull=True, occurred_at__gte=timezone.now() - publish_max_age()
        ).aggregate(oldest=Min("occurred_at"))["oldest"]
    except DatabaseError:
        if not connection.in_atomic_block:
            connection.close()  # reconnect on the next poll
        raise


def _fresh(fn: Callable[[], Any]) -> Any:
    connection.close_if_unusable_or_obsolete()  # this thread's connection, per DB_CONN_MAX_AGE
    return fn()


async def _in_own_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_db_executor, _fresh, fn)


async def _database_and_outbox(run_db: RunDb) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.monotonic()
    try:
        oldest = await asyncio.wait_for(run_db(_oldest_unpublished), check_timeout())
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready"
        error = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        failed = {"ok": False, "error": error}
        return failed, {"ok": False, "error": "database unavailable"}
    database = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    age = 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())
    limit = outbox_max_age()
    outbox = {
        "ok": age <= limit,
        "oldest_unpublished_seconds": round(age, 1),
        "max_seconds": limit,
    }
    return database, outbox


async def _channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer configured"}
    redis = bool(getattr(layer, "is_redis", False))
    entry: dict[str, Any] = {"backend": type(layer).__name__, "redis": redis}
    if redis and id(layer) not in _probe_channels:
        # The layer subscribes (its reader connection) when a channel of this process exists;
        # a worker without sockets yet would otherwise report a subscription it does not have.
        try:
            _probe_channels[id(layer)] = await asyncio.wait_for(
                layer.new_channel(), check_timeout()
            )
        except Exception as exc:  # noqa: BLE001
            entry.update(ok=False, error=type(exc).__name__)
            return entry
    healthy = getattr(layer, "healthy", None)
    entry["ok"] = True if healthy is None else bool(healthy)
    if not entry["ok"]:
        entry["error"] = "not subscribed to Redis"
    return entry


def _publisher() -> dict[str, Any]:
    running = current_publisher() is not None
    return {"ok": running} if running else {"ok": False, "error": "not running"}


def _periodic() -> dict[str, Any]:
    """The runner's heartbeat: its loop task runs and is not stuck in one tick."""
    if not periodic.enabled():
        return {"ok": True, "enabled": False}
    runner = periodic.current()
    if runner is None:
        return {"ok": False, "error": "not running"}
    silent, limit = runner.silent_for(), periodic_stall()
    entry: dict[str, Any] = {"ok": silent <= limit, "tick_seconds": round(silent, 1)}
    entry["max_seconds"] = limit
    if not entry["ok"]:
        entry["error"] = "stalled"
    return entry


async def readiness_checks(run_db: RunDb = _in_own_thread) -> dict[str, dict[str, Any]]:
    (database, outbox), layer = await asyncio.gather(_database_and_outbox(run_db), _channel_layer())
    return {
        "database": database,
        "channel_layer": layer,
        "publisher": _publisher(),
        "outbox": outbox,
        "periodic": _periodic(),
    }


def _json(status: int, body: dict[str, Any]) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def liveness() -> HttpResponse:
    return _json(200, {"status": "ok", "worker": os.getpid()})


_last_failing: tuple[str, ...] = ()


async def readiness(run_db: RunDb = _in_own_thread) -> HttpResponse:
    global _last_failing
    checks = await readiness_checks(run_db)
    failing = tuple(name for name, check in checks.items() if not check["ok"])
    if failing != _last_failing:  # one line per change, not one per poll
        if failing:
            logger.warning("not ready: %s failing", ", ".join(failing))
        else:
            logger.info("ready again")
        _last_failing = failing
    body = {"status": "fail" if failing else "ok", "worker": os.getpid(), "checks": checks}
    response = _json(503 if failing else 200, body)
    response._has_been_logged = True  # Django would log every 503 poll as an error
    return response


@sync_and_async_middleware
def HealthCheckMiddleware(get_response):  # noqa: N802 - a middleware factory, named like a class
    """First in MIDDLEWARE: answers the two health paths (GET/HEAD) before anything else runs."""

    def answers(request: HttpRequest) -> bool:
        return request.path in (LIVENESS_PATH, READINESS_PATH) and request.method in ("GET", "HEAD")

    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            if answers(request):
                return liveness() if request.path == LIVENESS_PATH else await readiness()
            return await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            if answers(request):
                if request.path == LIVENESS_PATH:
                    return liveness()
                # Without an event loop of the server's own (WSGI, the test client): the query
                # runs in this thread, on the request's connection.
                return async_to_sync(readiness)(sync_to_async(lambda fn: fn()))
            return get_response(request)

    return middleware
