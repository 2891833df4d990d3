"""Prometheus metrics at `GET /metrics` (prometheus-client), right for several uvicorn workers.

With `PROMETHEUS_MULTIPROC_DIR` set (an empty directory at server start, shared by the workers:
`make serve` empties it, the compose file mounts a fresh tmpfs), every worker writes its samples
to files there and a scrape of any worker returns the sum over all of them (prometheus-client's
multiprocess mode). Without it, each process reports only itself (fine for one worker).

Served only to an address in `METRICS_ALLOWED_IPS` (default loopback; networks allowed, e.g.
`10.0.0.0/8`) or to a request with `Authorization: Bearer <METRICS_TOKEN>`; anyone else gets 403.
Answered ahead of the host check and the HTTPS redirect (a scraper uses the worker's address), and
not itself counted. docs/operations.md lists every metric and the alerts to set on them.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from config.clientip import client_ip
from notifications.events.outbox import max_age as publish_max_age
from notifications.models import StoredEvent

METRICS_PATH = "/metrics"

HTTP_REQUESTS = Counter(
    "hotspot_http_requests_total",
    "HTTP requests answered, by Django view name, method and status code.",
    ["view", "method", "status"],
)
HTTP_DURATION = Histogram(
    "hotspot_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe_request(view: str | None, method: str, status: int, seconds: float) -> None:
    """Count one answered request (called by config.request_log for every request it logs)."""
    view = view or "<unmatched>"  # 404s: never the raw path (unbounded label values)
    method = method if method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} else "other"
    HTTP_REQUESTS.labels(view, method, str(status)).inc()
    HTTP_DURATION.labels(view).observe(seconds)


class OutboxCollector:
    """The outbox backlog, read from the database at scrape time (one indexed query)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = GaugeMetricFamily(
            "hotspot_outbox_unpublished_events",
            "Stored events not yet published to the channel layer (within the publish max age).",
        )
        oldest = GaugeMetricFamily(
            "hotspot_outbox_oldest_unpublished_seconds",
            "Age of the oldest event still to be published; 0 when none waits.",
        )
        up = GaugeMetricFamily(
            "hotspot_outbox_query_ok", "1 if the outbox could be read for this scrape, else 0."
        )
        try:
            now = timezone.now()
            row = StoredEvent.objects.filter(
                published_at__isnull=True, occurred_at__gte=now - publish_max_age()
            ).aggregate(count=Count("id"), oldest=Min("occurred_at"))
        except Exception:  # noqa: BLE001 - the scrape still answers, saying the query failed
            up.add_metric([], 0)
            yield up
            return
        backlog.add_metric([], row["count"])
        age = 0.0 if row["oldest"] is None else max(0.0, (now - row["oldest"]).total_seconds())
        oldest.add_metric([], age)
        up.add_metric([], 1)
        yield from (backlog, oldest, up)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """The exposition text: every worker's samples (multiprocess) or this process's, + outbox."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        for collector in (HTTP_REQUESTS, HTTP_DURATION):
            registry.register(collector)
    registry.register(OutboxCollector())
    return generate_latest(registry)


def _allowed_networks() -> list[Any]:
    return [ipaddress.ip_network(item, strict=False) for item in settings.METRICS_ALLOWED_IPS]


def allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


def metrics_response(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    response = HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


@sync_and_async_middleware
def MetricsMiddleware(get_response):  # noqa: N802 - a middleware factory, named like a class
    """Answers GET /metrics (after HealthCheckMiddleware, before everything else)."""

    def answers(request: HttpRequest) -> bool:
        return request.path == METRICS_PATH and request.method in ("GET", "HEAD")

    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            if answers(request):
                return await sync_to_async(metrics_response)(request)
            return await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            return metrics_response(request) if answers(request) else get_response(request)

    return middleware
