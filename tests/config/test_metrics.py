"""GET /metrics: who may read it, what it counts, and one sum over several uvicorn workers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.urls import resolve
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio.client import connect

from notifications.events import broadcast, catalog
from notifications.models import StoredEvent
from tests.conftest import require_program, require_server
from tests.factories import TenantAdminFactory
from tests.liveserver import (
    BASE_DIR,
    RedisServer,
    Uvicorn,
    database_url_for_servers,
    get,
    server_env,
    wait_until,
)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests_of(text: str, view: str, status: str = "200") -> float:
    return sum(
        value
        for (name, labels), value in samples(text).items()
        if name == "hotspot_http_requests_total"
        and dict(labels).get("view") == view
        and dict(labels).get("status") == status
    )


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels (0 when absent)."""
    wanted = tuple(sorted(labels.items()))
    return samples(text).get((name, wanted), 0.0)


def scrape(base: str) -> str:
    status, _, text = get(base + "/metrics")
    assert status == 200
    return text


def per_worker(directory: Path, name: str, **labels: str) -> dict[str, float]:
    """`name` as each worker's own files say (pid → value): what the scrape must add up."""
    found = {}
    for pid in {f.stem.rsplit("_", 1)[1] for f in directory.glob("*.db")}:
        with tempfile.TemporaryDirectory() as one:
            for f in directory.glob(f"*_{pid}.db"):
                shutil.copy(f, one)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=one)
            found[pid] = registry.get_sample_value(name, labels) or 0.0
    return found


def login_view() -> str:
    return resolve("/accounts/login/").view_name


@pytest.mark.django_db
def test_requests_are_counted_by_view_and_status(client):
    before = requests_of(client.get("/metrics").content.decode(), login_view())
    for _ in range(3):
        assert client.get("/accounts/login/").status_code == 200
    client.get("/no-such-page/")
    text = client.get("/metrics").content.decode()
    assert requests_of(text, login_view()) == before + 3
    assert requests_of(text, "<unmatched>", "404") >= 1
    assert "/no-such-page/" not in text  # never a raw path as a label
    assert requests_of(text, "metrics") == 0  # scrapes are not counted


@pytest.mark.django_db
def test_only_allowed_addresses_or_the_token_may_read_metrics(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    outsider = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **outsider).status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1", **outsider).status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **outsider)
    assert wrong.status_code == 403 and b"hotspot_" not in wrong.content
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", **outsider)
    assert ok.status_code == 200 and b"hotspot_outbox_unpublished_events" in ok.content
    settings.METRICS_ALLOWED_IPS = ["203.0.113.0/24"]
    assert client.get("/metrics", **outsider).status_code == 200
    assert client.get("/metrics").status_code == 403  # 127.0.0.1 no longer listed


@pytest.mark.django_db
def test_outbox_backlog_and_age_follow_unpublished_events(client):
    def outbox() -> tuple[float, float]:
        values = samples(client.get("/metrics").content.decode())
        return (
            values[("hotspot_outbox_unpublished_events", ())],
            values[("hotspot_outbox_oldest_unpublished_seconds", ())],
        )

    assert outbox() == (0, 0)
    event = StoredEvent.objects.create(
        name="SystemNotification", category="system", level="info", title="t", message="m"
    )
    StoredEvent.objects.filter(pk=event.pk).update(
        occurred_at=timezone.now() - timedelta(seconds=90)
    )
    count, age = outbox()
    assert count == 1 and 89 <= age < 200
    StoredEvent.objects.filter(pk=event.pk).update(published_at=timezone.now())
    assert outbox() == (0, 0)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_every_worker_reports_the_sum_over_all_workers(tmp_path):
    url = database_url_for_servers()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=url,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    env.pop("REDIS_URL", None)
    server = Uvicorn(env, workers=2)
    try:
        server.wait_ready()
        wait_until(lambda: get(server.http + "/healthz")[0] == 200, 60, "the workers")
        served = 0

        def both_workers_served() -> bool:
            # Fresh connections each time; the kernel spreads them over the two workers.
            nonlocal served
            assert get(server.http + "/accounts/login/")[0] == 200
            served += 1
            pids = {p.name.split("_")[-1] for p in tmp_path.glob("counter_*.db")}
            return served >= 20 and len(pids) >= 2

        wait_until(both_workers_served, 120, "requests served by both workers")
        view = login_view()
        for _ in range(10):  # whichever worker answers the scrape, it reports both
            status, _, text = get(server.http + "/metrics")
            assert status == 200
            assert requests_of(text, view) == served
    finally:
        server.stop()


def exported_names() -> set[str]:
    """Every sample name /metrics can carry: the declared metrics and the outbox gauges."""
    from config import metrics

    names = set()
    for collector in metrics.DECLARED:
        for family in collector.describe():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
            else:
                names.add(family.name)
    return names


@pytest.mark.django_db
def test_the_grafana_dashboard_queries_only_metrics_the_platform_exports():
    from config import metrics

    dashboard = json.loads((BASE_DIR / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"hotspot_[a-z_]+", e)}
    exported = exported_names() | {f.name for f in metrics.OutboxCollector().collect()}
    assert used and used <= exported, used - exported
    # Every declared metric has a panel (a bucket, sum or count names its histogram).
    families = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in used}
    declared = {family.name for c in metrics.DECLARED for family in c.describe()}
    assert declared <= families, declared - families


def test_operations_docs_name_every_metric():
    from config import metrics

    text = (BASE_DIR / "docs" / "operations.md").read_text()
    for collector in metrics.DECLARED:
        for family in collector.describe():
            name = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{name}`" in text, f"{name} is not described in docs/operations.md"


SOCKETS = ("hotspot_sockets_open", {"endpoint": "notifications", "role": "tenant_admin"})
FRAMES = ("hotspot_socket_frames_sent_total", {"endpoint": "notifications"})
EVENTS = 4


@pytest.mark.live
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_pipeline_metrics_move_when_events_flow_summed_over_two_workers(
    transactional_db, tmp_path, monkeypatch
):
    """Sockets on both workers, events through the workers' publishers, a resume: every scrape
    (whichever worker answers) reports the sum over both, and the sockets go back to 0."""
    require_program("redis-server")
    require_server(database_url_for_servers(), 5432, "PostgreSQL")
    if connection.vendor != "postgresql":
        pytest.skip("two workers share the database: run the suite on PostgreSQL")
    # The rows this test writes are left to the servers' publishers (not published from here).
    monkeypatch.setattr(broadcast, "_after_commit", lambda event_id: None)
    admin = TenantAdminFactory()
    token = str(AccessToken.for_user(admin))
    prometheus = tmp_path / "prometheus"
    prometheus.mkdir()
    redis = RedisServer().start()
    env = server_env(redis_url=redis.url, prefix=f"metrics-live-{os.getpid()}")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prometheus)
    server = Uvicorn(env, workers=2)
    try:
        server.wait_ready()
        wait_until(lambda: get(server.http + "/healthz")[0] == 200, 60, "the workers")
        asyncio.run(_events_flow(server, prometheus, token, admin))
    finally:
        server.stop()
        redis.stop()


def _store_events(admin) -> list[int]:
    """EVENTS tenant events, committed (in a thread of its own: its connection closed after)."""
    try:
        return [
            broadcast.broadcast(
                catalog.SystemNotification.create(tenant=admin.tenant, message=f"m{n}")
            ).id
            for n in range(EVENTS)
        ]
    finally:
        connection.close()


async def _events_flow(server: Uvicorn, prometheus: Path, token: str, admin) -> None:
    url = f"{server.ws}?token={token}"
    sockets = []

    def on_both_workers() -> bool:
        holding = per_worker(prometheus, SOCKETS[0], **SOCKETS[1])
        return sum(1 for n in holding.values() if n > 0) >= 2

    try:
        # Fresh connections until both workers hold some (the kernel spreads them).
        while len(sockets) < 4 or not on_both_workers():
            assert len(sockets) < 60, "every socket landed on one worker"
            ws = await connect(url, open_timeout=30)
            sockets.append(ws)
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "welcome"
        count = len(sockets)
        for _ in range(6):  # any worker answers the scrape; each reports both
            assert value(scrape(server.http), SOCKETS[0], **SOCKETS[1]) == count

        # Events stored by another process; the workers' publishers send them.
        ids = await asyncio.to_thread(_store_events, admin)

        async def events_of(ws) -> list[int]:
            got = []
            while len(got) < EVENTS:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if frame.get("type") == "event":
                    got.append(frame["id"])
            return got

        for got in await asyncio.gather(*(events_of(ws) for ws in sockets)):
            assert sorted(got) == ids

        # A resume from the first event replays the ones after it.
        await sockets[0].send(json.dumps({"action": "resume", "last_id": ids[0]}))
        replayed = 0
        while True:
            frame = json.loads(await asyncio.wait_for(sockets[0].recv(), 60))
            if frame.get("type") == "resumed":
                break
            assert frame.get("type") == "event", frame
            replayed += 1
        assert replayed >= EVENTS - 1

        frames = count * (1 + EVENTS) + replayed + 1  # welcome, events; replay and `resumed`

        def pipeline_counted() -> dict | None:
            text = scrape(server.http)
            seen = {
                "frames": value(text, FRAMES[0], **FRAMES[1]),
                "published": value(
                    text, "hotspot_events_published_total", event="SystemNotification"
                ),
                "latency_count": value(text, "hotspot_event_publish_latency_seconds_count"),
                "presence": value(text, "hotspot_presence_entries"),
                "resumes": value(
                    text,
                    "hotspot_socket_resumes_total",
                    endpoint="notifications",
                    outcome="replayed",
                ),  # fmt: skip
                "replayed": value(
                    text, "hotspot_socket_replayed_events_total", endpoint="notifications"
                ),
            }
            wanted = {
                "frames": frames,
                "published": EVENTS,
                "latency_count": EVENTS,
                "presence": count,  # one entry per tenant socket (tenant presence)
                "resumes": 1,
                "replayed": replayed,
            }
            return seen if seen == wanted else None

        wait_until(pipeline_counted, 90, "the scrape to count sockets' frames, events, resume")
        # The frames were sent by both workers, and the scrape is their sum.
        sent = per_worker(prometheus, FRAMES[0], **FRAMES[1])
        assert sum(1 for n in sent.values() if n > 0) >= 2, sent
        assert sum(sent.values()) == frames
    finally:
        for ws in sockets:
            await ws.close()

    def closed() -> bool:
        text = scrape(server.http)
        return (
            value(text, SOCKETS[0], **SOCKETS[1]) == 0
            and value(text, "hotspot_presence_entries") == 0
        )

    wait_until(closed, 90, "the open sockets and presence entries to go back to 0")


def test_redis_counters_follow_the_layers_stats_and_never_go_down():
    from prometheus_client import REGISTRY

    from config.metrics import LayerStats

    keys = ("reconnects", "dead_subscriptions", "resubscribes")

    def counted() -> dict[str, float]:
        return {k: REGISTRY.get_sample_value(f"hotspot_redis_{k}_total") or 0.0 for k in keys}

    class Layer:
        def __init__(self, **stats: int) -> None:
            self.stats = dict.fromkeys(keys, 0) | stats

    class Proxy:  # channels-redis' pub/sub layer forwards unknown attributes to a loop's layer
        def __getattr__(self, name: str):
            raise AssertionError(f"{name} read through a proxying __getattr__")

    start, sampler, layer = counted(), LayerStats(), Layer()
    sampler.sample(layer)
    assert counted() == start
    layer.stats.update(reconnects=2, resubscribes=2)
    sampler.sample(layer)
    sampler.sample(layer)  # nothing new: nothing added
    grown = {k: counted()[k] - start[k] for k in keys}
    assert grown == {"reconnects": 2, "dead_subscriptions": 0, "resubscribes": 2}
    sampler.sample(Layer(reconnects=1, dead_subscriptions=1))  # a new layer: its own totals
    sampler.sample(Proxy())
    sampler.sample(None)
    grown = {k: counted()[k] - start[k] for k in keys}
    assert grown == {"reconnects": 3, "dead_subscriptions": 1, "resubscribes": 2}


WORKER = """
import os, sys, time, django
django.setup()
from config import metrics
metrics.SOCKETS_OPEN.labels("notifications", "staff").inc()
metrics.FRAMES_SENT.labels("notifications").inc(5)
print("counted", flush=True)
if sys.argv[1] == "crash":
    os._exit(0)  # gone without closing its socket
time.sleep(120)
"""


@pytest.mark.django_db
def test_a_dead_workers_open_sockets_drop_out_and_its_counts_stay(tmp_path, monkeypatch):
    import subprocess
    import sys

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    run = [sys.executable, "-c", WORKER]
    crashed = subprocess.run([*run, "crash"], env=env, cwd=BASE_DIR, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert crashed.stdout.strip() == "counted", crashed.stderr
    alive = subprocess.Popen(
        [*run, "stay"], env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    try:
        assert alive.stdout.readline().strip() == "counted"
        from config import metrics

        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        text = metrics.render().decode()
        # The live worker's socket counts, the crashed one's not; both workers' frames stay.
        assert value(text, "hotspot_sockets_open", endpoint="notifications", role="staff") == 1
        assert value(text, FRAMES[0], **FRAMES[1]) == 10
    finally:
        alive.kill()
        alive.wait(10)
    text = metrics.render().decode()
    assert value(text, "hotspot_sockets_open", endpoint="notifications", role="staff") == 0
    assert value(text, FRAMES[0], **FRAMES[1]) == 10


@pytest.mark.live
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_every_workers_redis_reconnect_is_counted(transactional_db, tmp_path):
    """Redis restarts under two workers: the scrape counts a reconnect of each of them."""
    from notifications.realtime.layers import FanoutChannelLayer
    from tests.config.test_health import Poller

    if not isinstance(getattr(FanoutChannelLayer(hosts=[REDIS_NOWHERE]), "stats", None), dict):
        pytest.skip("this channel layer keeps no `stats` (reconnects, dead_subscriptions, ...)")
    require_program("redis-server")
    require_server(database_url_for_servers(), 5432, "PostgreSQL")
    redis = RedisServer().start()
    env = server_env(redis_url=redis.url, prefix=f"metrics-redis-{os.getpid()}")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    server = Uvicorn(env, workers=2)
    reconnects = "hotspot_redis_reconnects_total"
    try:
        server.wait_ready()
        poll = Poller(server.http)
        poll.until(200)  # both workers subscribed (a readiness poll opens the subscription)
        before = per_worker(tmp_path, reconnects)
        redis.stop()
        poll.until(503)
        redis.start()
        poll.until(200)

        def each_worker_counted() -> bool:
            now = per_worker(tmp_path, reconnects)
            grown = [pid for pid, n in now.items() if n > before.get(pid, 0)]
            return len(grown) >= 2 and value(scrape(server.http), reconnects) == sum(now.values())

        wait_until(each_worker_counted, 60, "a reconnect of each worker in the scrape")
    finally:
        server.stop()
        redis.stop()


REDIS_NOWHERE = "redis://127.0.0.1:1/0"  # a layer object only: nothing connects to it


@pytest.mark.django_db
def test_a_forged_forwarded_for_does_not_open_metrics_to_a_direct_caller(client, settings):
    """Behind one proxy (NUM_PROXIES=1) the worker believes the last X-Forwarded-For hop; a
    caller reaching the worker's port directly writes that hop itself. Both the peer and the
    client must be allowed (a scraper connects directly; the proxy on loopback adds the client)."""
    settings.NUM_PROXIES = 1
    direct = {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "127.0.0.1"}
    assert client.get("/metrics", **direct).status_code == 403
    through_proxy = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert client.get("/metrics", **through_proxy).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200  # the scraper
    local = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"}
    assert client.get("/metrics", **local).status_code == 200  # curl on the host, via nginx


def test_a_process_started_before_the_multiprocess_dir_exists_creates_it(tmp_path):
    """The image's collectstatic runs before anything made /tmp/prometheus (it used to fail)."""
    missing = tmp_path / "not" / "yet"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PROMETHEUS_MULTIPROC_DIR": str(missing),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--dry-run", "--noinput"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert missing.is_dir()


def test_the_config_apps_ready_creates_the_multiprocess_dir(tmp_path, monkeypatch):
    from django.apps import apps

    missing = tmp_path / "fresh-tmpfs"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(missing))
    apps.get_app_config("config").ready()
    assert missing.is_dir()
