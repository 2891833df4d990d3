"""Prometheus metrics at `GET /metrics` (prometheus-client), right for several uvicorn workers.

Every metric the platform exports is declared here, and only here: the code that counts
(consumers, the publisher, RADIUS, payments) imports this module, which imports nothing of the
project at load time (so domain apps and `notifications.realtime` may use it; the outbox query
is imported when a scrape runs). docs/operations.md says what each metric means.

With `PROMETHEUS_MULTIPROC_DIR` set (an empty directory at server start, shared by the workers:
`make serve` empties it, the compose file mounts a fresh tmpfs), every worker writes its samples
to files there and a scrape of any worker returns the sum over all of them (prometheus-client's
multiprocess mode). Gauges of live things (open sockets, presence entries) are `livesum`: only
processes still alive count (a scrape drops the files of workers that died, see
`forget_dead_workers`). Without the variable, each process reports only itself.

What the hot paths pay: nothing reads the database or Redis for a metric. A frame to a socket
adds one to a process-local tally (a multiprocess counter's locked file write per frame costs
~6x more: bench/metrics_cost.py); presence entries and the layer's Redis `stats` are read, not
counted. A per-process task (`sampler`, started with the publisher) moves those into the
metrics every SAMPLE_SECONDS, and so does each scrape for its own worker; the other workers'
frames may lag by that much.

Served only to an address in `METRICS_ALLOWED_IPS` (default loopback; networks allowed, e.g.
`10.0.0.0/8`) or to a request with `Authorization: Bearer <METRICS_TOKEN>`; anyone else gets 403.
The client address and the TCP peer must both be allowed (a scrape through a proxy needs the
proxy's address listed too), so a forged X-Forwarded-For sent straight to a worker opens nothing.
Answered ahead of the host check and the HTTPS redirect (a scraper uses the worker's address), and
not itself counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from config.clientip import client_ip

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
SAMPLE_SECONDS = 2.0

# prometheus_client opens its files in PROMETHEUS_MULTIPROC_DIR as the metrics below are
# declared (at import): the directory is created, if missing, by config.apps (ready()).

# --- HTTP ------------------------------------------------------------------------------------

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

# --- the live pipeline (sockets, publisher, layer) ---------------------------------------------

#: `endpoint` label values: /ws/notifications/, the Pusher socket /app/<key>, /ws/portal/
ENDPOINTS = ("notifications", "pusher", "portal")

SOCKETS_OPEN = Gauge(
    "hotspot_sockets_open",
    "WebSockets open now, by endpoint and the role of the signed-in person "
    "(pusher: 'none' until a channel is signed for it; portal: 'customer').",
    ["endpoint", "role"],
    multiprocess_mode="livesum",
)
FRAMES_SENT = Counter(
    "hotspot_socket_frames_sent_total",
    "Frames sent to clients over WebSockets (events, replies, presence), by endpoint.",
    ["endpoint"],
)
SOCKET_OVERFLOWS = Counter(
    "hotspot_socket_overflows_total",
    "Sockets closed because they fell too far behind (close code 4408, 'too slow'), by endpoint.",
    ["endpoint"],
)
RESUMES = Counter(
    "hotspot_socket_resumes_total",
    "Resume requests answered, by endpoint and outcome (replayed, coalesced, resync, limited).",
    ["endpoint", "outcome"],
)
REPLAYED_EVENTS = Counter(
    "hotspot_socket_replayed_events_total",
    "Stored events sent again to sockets, by endpoint: resumes, and the replay after a worker's "
    "lost Redis subscription.",
    ["endpoint"],
)
EVENTS_PUBLISHED = Counter(
    "hotspot_events_published_total",
    "Stored events published to the channel layer, by catalog event name.",
    ["event"],
)
PUBLISH_LATENCY = Histogram(
    "hotspot_event_publish_latency_seconds",
    "From an event's occurred_at (stamped as its row is written, in the transaction that "
    "commits it) to the channel layer accepting it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
PRESENCE_ENTRIES = Gauge(
    "hotspot_presence_entries",
    "Presence entries (one per socket per scope it is present in) held by the server processes.",
    multiprocess_mode="livesum",
)
#: the channel layer's `stats` keys → the counter each one feeds (sampled, see LayerStats)
REDIS_COUNTERS = {
    "reconnects": Counter(
        "hotspot_redis_reconnects_total",
        "Times a server process's channel layer reconnected its Redis subscription.",
    ),
    "dead_subscriptions": Counter(
        "hotspot_redis_dead_subscriptions_total",
        "Redis subscriptions found dead (no answer to the layer's health check) and dropped.",
    ),
    "resubscribes": Counter(
        "hotspot_redis_resubscribes_total",
        "Times the channel layer restored its groups' subscriptions after a reconnect.",
    ),
}

# --- domain -------------------------------------------------------------------------------

RADIUS_REQUESTS = Counter(
    "hotspot_radius_requests_total",
    "FreeRADIUS lookups and accounting packets answered, by kind (client, authorize, "
    "accounting), result and, for rejects, the reason.",
    ["kind", "result", "reason"],
)
RADIUS_CACHE_DROPS = Counter(
    "hotspot_radius_cache_drops_total",
    "Drops of FreeRADIUS's cached answers sent to each cache listener, by result (confirmed, "
    "late, unanswered, expired, refused, discarded).",
    ["result"],
)
STK_PUSHES = Counter(
    "hotspot_stk_pushes_total",
    "M-Pesa STK pushes asked of Daraja, by result (sent, refused, ambiguous).",
    ["result"],
)

DECLARED = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    SOCKETS_OPEN,
    FRAMES_SENT,
    SOCKET_OVERFLOWS,
    RESUMES,
    REPLAYED_EVENTS,
    EVENTS_PUBLISHED,
    PUBLISH_LATENCY,
    PRESENCE_ENTRIES,
    *REDIS_COUNTERS.values(),
    RADIUS_REQUESTS,
    RADIUS_CACHE_DROPS,
    STK_PUSHES,
)


def observe_request(view: str | None, method: str, status: int, seconds: float) -> None:
    """Count one answered request (called by config.request_log for every request it logs)."""
    view = view or "<unmatched>"  # 404s: never the raw path (unbounded label values)
    method = method if method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} else "other"
    HTTP_REQUESTS.labels(view, method, str(status)).inc()
    HTTP_DURATION.labels(view).observe(seconds)


#: (kind, status) → result label; anything else is its status code (5xx: "error")
RADIUS_RESULTS = {
    ("client", 200): "found",
    ("client", 404): "unknown",
    ("authorize", 200): "accept",
    ("authorize", 401): "reject",
    ("accounting", 204): "applied",
    ("client", 403): "forbidden",
    ("authorize", 403): "forbidden",
    ("accounting", 403): "forbidden",
    ("client", 400): "bad_request",
    ("authorize", 400): "bad_request",
    ("accounting", 400): "bad_request",
}


def observe_radius(kind: str, status: int, reason: str = "") -> None:
    """One RADIUS answer, named by the status the endpoint returns (hotspot.radius_views)."""
    result = RADIUS_RESULTS.get((kind, status), "error" if status >= 500 else str(status))
    RADIUS_REQUESTS.labels(kind, result, reason).inc()


def observe_radius_cache_drop(result: str) -> None:
    """One change's drop at one FreeRADIUS cache listener (hotspot.radius_cache)."""
    RADIUS_CACHE_DROPS.labels(result).inc()


class Tally:
    """A process-local count for the hottest path (a frame to one socket): `n += 1` instead of a
    multiprocess counter's locked file write per frame; `sample()` adds what grew to `counter`."""

    __slots__ = ("n", "_flushed", "_counter")

    def __init__(self, counter: Any) -> None:
        self.n = 0
        self._flushed = 0
        self._counter = counter

    def flush(self) -> None:
        """Called under `_flush_lock`: the increments happen on the event loop, a flush may run
        in a scrape's thread; reading an int there is safe, and only flushes write `_flushed`."""
        seen = self.n
        if seen > self._flushed:
            self._counter.inc(seen - self._flushed)
            self._flushed = seen


_flush_lock = threading.Lock()
#: frames sent, per endpoint: counted as they go, flushed into FRAMES_SENT by `sample()`
FRAME_TALLIES = {endpoint: Tally(FRAMES_SENT.labels(endpoint)) for endpoint in ENDPOINTS}


class SocketMeter:
    """One socket's share of the socket metrics: counted open once, closed once.

    Bound at the handshake, so the hot path (`frames.n += 1`) does no label lookup.
    """

    __slots__ = ("endpoint", "role", "frames", "_open")

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.role: str | None = None
        self.frames = FRAME_TALLIES[endpoint]
        self._open = False

    def opened(self, role: str | None) -> None:
        """The socket is accepted for use (authenticated); `role` labels it."""
        if self._open:
            self.move(role)
            return
        self._open = True
        self.role = role or "none"
        SOCKETS_OPEN.labels(self.endpoint, self.role).inc()

    def move(self, role: str | None) -> None:
        """The socket now acts for another role (a Pusher socket's first grant)."""
        role = role or "none"
        if self._open and role != self.role:
            SOCKETS_OPEN.labels(self.endpoint, self.role).dec()
            SOCKETS_OPEN.labels(self.endpoint, role).inc()
            self.role = role

    def closed(self) -> None:
        """Idempotent: called on disconnect and again whenever the consumer ends."""
        if self._open:
            self._open = False
            SOCKETS_OPEN.labels(self.endpoint, self.role).dec()

    def overflowed(self) -> None:
        SOCKET_OVERFLOWS.labels(self.endpoint).inc()

    def resumed(self, outcome: str, replayed: int = 0) -> None:
        RESUMES.labels(self.endpoint, outcome).inc()
        if replayed:
            REPLAYED_EVENTS.labels(self.endpoint).inc(replayed)

    def gap_replayed(self, replayed: int) -> None:
        """Events a socket was sent again after its worker's Redis subscription came back."""
        if replayed:
            REPLAYED_EVENTS.labels(self.endpoint).inc(replayed)


def observe_published(event: str, seconds: float) -> None:
    """One stored event accepted by the channel layer `seconds` after it occurred."""
    EVENTS_PUBLISHED.labels(event).inc()
    PUBLISH_LATENCY.observe(max(0.0, seconds))


# --- sampled per process ------------------------------------------------------------------


def _declared(obj: Any, name: str) -> Any:
    """`obj.<name>` if its class or instance defines it (never a proxying `__getattr__`)."""
    defined = name in getattr(obj, "__dict__", {}) or any(
        name in vars(klass) for klass in type(obj).__mro__
    )
    return getattr(obj, name, None) if defined else None


class LayerStats:
    """Feeds the Redis counters from the layer's `stats` dict (absent: they stay at 0).

    The layer keeps running totals per process; each sample adds what grew since the last one,
    so the multiprocess counters sum the workers and never go down (a new layer object starts
    its own baseline).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._layer_id: int | None = None
        self._seen: dict[str, float] = {}

    def sample(self, layer: Any) -> None:
        stats = _declared(layer, "stats") if layer is not None else None
        if not isinstance(stats, dict):
            return
        with self._lock:
            if id(layer) != self._layer_id:
                self._layer_id, self._seen = id(layer), {}
            for key, counter in REDIS_COUNTERS.items():
                try:
                    value = float(stats.get(key, 0) or 0)
                except (TypeError, ValueError):
                    continue
                grown = value - self._seen.get(key, 0.0)
                if grown > 0:
                    counter.inc(grown)
                self._seen[key] = max(value, self._seen.get(key, 0.0))


layer_stats = LayerStats()


def sample() -> None:
    """Flush the frame tallies; read presence entries and layer stats into their metrics."""
    from channels.layers import channel_layers

    from notifications.realtime.presence import local_entry_count

    with _flush_lock:
        for tally in FRAME_TALLIES.values():
            tally.flush()
    with contextlib.suppress(RuntimeError):  # a dict changing size under a scrape's thread
        PRESENCE_ENTRIES.set(local_entry_count())
    # Only a layer this process already built (a scrape must not build one).
    layer = channel_layers.backends.get("default")
    layer_stats.sample(layer)


class Sampler:
    """This process's sampling loop (started with the publisher by config.background)."""

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        task = self.task
        return task is not None and not task.done() and not task.get_loop().is_closed()

    async def _forever(self) -> None:
        while True:
            try:
                sample()
            except Exception:  # a metric must never stop the loop
                logger.debug("metrics sample failed", exc_info=True)
            await asyncio.sleep(SAMPLE_SECONDS)

    def start(self) -> None:
        if not self.running:
            self.task = asyncio.get_running_loop().create_task(
                self._forever(), name="metrics-sampler"
            )

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            sample()  # a worker that shuts down leaves its last frames counted


sampler = Sampler()


# --- the scrape -----------------------------------------------------------------------------


class OutboxCollector:
    """The outbox backlog, read from the database at scrape time (one indexed query)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count, Min
        from django.utils import timezone

        from notifications.events.outbox import max_age as publish_max_age
        from notifications.models import StoredEvent

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that are gone (a crashed or recycled uvicorn worker).

    Their counters stay (sums never go down); their open sockets and presence entries do not.
    """
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        try:
            pid = int(name.rsplit("_", 1)[1].removesuffix(".db"))
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            mark_process_dead(pid, path)


def render() -> bytes:
    """The exposition text: every worker's samples (multiprocess) or this process's, + outbox."""
    try:
        sample()  # this worker's own samples are as fresh as the scrape
    except Exception:  # noqa: BLE001
        logger.debug("metrics sample failed", exc_info=True)
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path:
        forget_dead_workers(path)
        MultiProcessCollector(registry)
    else:
        for collector in DECLARED:
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
    # Both the client (per NUM_PROXIES / TRUSTED_PROXIES) and the TCP peer: a caller reaching
    # the worker's port directly writes the X-Forwarded-For hop a proxy would be believed for.
    networks = _allowed_networks()
    for given in (client_ip(request), request.META.get("REMOTE_ADDR") or ""):
        try:
            address = ipaddress.ip_address(given)
        except ValueError:
            return False
        if not any(address in network for network in networks):
            return False
    return True


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
