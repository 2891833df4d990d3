"""/healthz and /readyz: through Django (shape, no secrets) and on live uvicorn workers whose
Redis (a server of the test's own) and PostgreSQL (through a relay the test cuts) go away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config import health
from notifications.models import StoredEvent
from notifications.realtime.layers import LocalFanoutChannelLayer
from tests.conftest import require_program, require_server
from tests.liveserver import (
    BASE_DIR,
    RedisServer,
    TcpProxy,
    Uvicorn,
    get,
    get_json,
    server_env,
    wait_until,
)


def test_liveness_answers_without_touching_the_database(client):
    # No database access is allowed in this test (no django_db mark): a query would raise.
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")  # any Host: before the check
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_readiness_reports_each_check_and_fails_without_a_publisher(client, monkeypatch):
    monkeypatch.setattr(health, "get_channel_layer", lambda: LocalFanoutChannelLayer())
    response = client.get("/readyz")
    assert response.status_code == 503  # the test client runs no outbox publisher
    body = response.json()
    assert body["status"] == "fail"
    assert set(body["checks"]) == {"database", "channel_layer", "publisher", "outbox", "periodic"}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True
    assert body["checks"]["publisher"] == {"ok": False, "error": "not running"}
    assert body["checks"]["outbox"]["ok"] is True
    # The test settings turn the periodic runner off: nothing to be alive, not a failure.
    assert body["checks"]["periodic"] == {"ok": True, "enabled": False}


@pytest.mark.django_db
def test_an_old_unpublished_event_makes_the_outbox_check_fail(client, settings, monkeypatch):
    monkeypatch.setattr(health, "get_channel_layer", lambda: LocalFanoutChannelLayer())
    settings.HEALTH_OUTBOX_MAX_AGE_SECONDS = 30
    event = StoredEvent.objects.create(
        name="SystemNotification", category="system", level="info", title="t", message="m"
    )
    checks = client.get("/readyz").json()["checks"]
    assert checks["outbox"]["ok"] is True
    StoredEvent.objects.filter(pk=event.pk).update(
        occurred_at=timezone.now() - timedelta(minutes=2)
    )
    checks = client.get("/readyz").json()["checks"]
    assert checks["outbox"]["ok"] is False
    assert checks["outbox"]["oldest_unpublished_seconds"] >= 119
    StoredEvent.objects.filter(pk=event.pk).update(published_at=timezone.now())
    assert client.get("/readyz").json()["checks"]["outbox"]["ok"] is True


@pytest.mark.django_db
def test_readiness_fails_when_the_periodic_runner_should_run_but_does_not(client, settings):
    settings.PERIODIC_ENABLED = True  # the test client's process starts no runner
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["periodic"] == {"ok": False, "error": "not running"}


def test_health_paths_only_answer_get():
    from django.test import Client

    assert Client().post("/healthz").status_code != 200


# --- live: two uvicorn workers, Redis and PostgreSQL going away and coming back ---------------


def _server_env(db_port: int, redis_url: str) -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"postgres://{db.get('USER') or 'postgres'}@127.0.0.1:{db_port}/{db['NAME']}",
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=f"health-{os.getpid()}",
        HEALTH_OUTBOX_MAX_AGE_SECONDS="3",
        HEALTH_CHECK_TIMEOUT_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    return env


def outbox_metrics(url: str) -> tuple[float, float]:
    status, _, text = get(url + "/metrics")
    assert status == 200
    values = {
        s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
    }
    return (
        values["hotspot_outbox_unpublished_events"],
        values["hotspot_outbox_oldest_unpublished_seconds"],
    )


class Poller:
    """Polls /readyz; `until(status)`: the last 8 answers all had it, from both workers."""

    def __init__(self, url: str) -> None:
        self.url = url + "/readyz"
        self.seen: list[dict] = []

    def until(self, status: int, timeout: float = 60) -> list[dict]:
        recent: deque[tuple[int, dict]] = deque(maxlen=8)

        def settled() -> bool:
            code, body = get_json(self.url, timeout=15)
            recent.append((code, body))
            self.seen.append(body)
            return (
                len(recent) == recent.maxlen
                and all(c == status for c, _ in recent)
                and len({b["worker"] for _, b in recent}) == 2
            )

        wait_until(settled, timeout, f"/readyz {status} from both workers")
        return [body for _, body in recent]


@pytest.mark.live
@pytest.mark.redis
@pytest.mark.postgres
def test_readiness_follows_redis_and_the_database_on_two_uvicorn_workers(transactional_db):
    require_program("redis-server")
    db = connection.settings_dict
    upstream = (db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    require_server(f"postgres://{upstream[0]}:{upstream[1]}", 5432, "PostgreSQL")
    redis, proxy = RedisServer(), TcpProxy(upstream)
    redis.start()
    proxy.start()
    env = _server_env(proxy.port, redis.url)
    server = Uvicorn(env, workers=2)
    try:
        server.wait_ready()
        poll = Poller(server.http)
        for body in poll.until(200):
            assert all(check["ok"] for check in body["checks"].values())
            assert body["checks"]["channel_layer"]["redis"] is True

        # Redis goes away: every worker's subscription is down.
        redis.stop()
        for body in poll.until(503):
            assert body["checks"]["channel_layer"]["ok"] is False
            assert body["checks"]["database"]["ok"] is True
        # An event committed meanwhile waits in the outbox; past the threshold, the outbox fails.
        fired = subprocess.run(
            [sys.executable, "manage.py", "fire_event", "SystemNotification", "--message", "x"],
            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert fired.returncode == 0, fired.stderr
        wait_until(
            lambda: get_json(poll.url)[1]["checks"]["outbox"]["ok"] is False,
            60,
            "the outbox check to fail on the unpublished event",
        )
        # The metrics show the waiting event (any worker answers; the gauge is read from the DB).
        assert outbox_metrics(server.http)[0] == 1
        # Redis back (same port): resubscribed, the event published, ready again.
        redis.start()
        for body in poll.until(200):
            assert body["checks"]["outbox"]["oldest_unpublished_seconds"] == 0
        assert StoredEvent.objects.filter(published_at__isnull=True).count() == 0
        assert outbox_metrics(server.http) == (0, 0)

        # The database becomes unreachable: not ready, with the reason; back: ready.
        proxy.stop()
        for body in poll.until(503):
            assert body["checks"]["database"]["ok"] is False
            assert body["checks"]["channel_layer"]["ok"] is True
        proxy.start()
        poll.until(200)

        # No secret in any answer: no URL, host, port or password.
        text = json.dumps(poll.seen)
        for secret in (env["DATABASE_URL"], env["REDIS_URL"], str(proxy.port), str(redis.port)):
            assert secret not in text
        assert urlparse(env["DATABASE_URL"]).hostname not in text
    finally:
        server.stop()
        proxy.stop()
        redis.stop()


@pytest.mark.live
@pytest.mark.redis
def test_a_worker_whose_periodic_runner_is_stuck_is_not_ready_until_it_moves(
    transactional_db, redis_url, tmp_path
):
    """One worker's runner stuck inside a task: that worker answers 503 (periodic stalled) while
    the other stays ready (it ticks on; the lease keeps it off the stuck task); then 200 again."""
    stall = tmp_path / "stall"
    env = server_env(redis_url=redis_url, prefix=f"health-periodic-{os.getpid()}")
    env.update(
        DJANGO_SETTINGS_MODULE="tests.config.periodic_settings",
        HEALTH_PERIODIC_STALL_SECONDS="5",
        PERIODIC_STALL_FILE=str(stall),
    )
    server = Uvicorn(env, workers=2)
    try:
        server.wait_ready()
        poll = Poller(server.http)
        for body in poll.until(200):
            assert body["checks"]["periodic"]["ok"] is True
            assert body["checks"]["periodic"]["max_seconds"] == 5

        stall.touch()  # the next run of the task blocks the worker that claims it
        stuck: set[int] = set()
        ready: set[int] = set()

        def one_stuck_one_ready() -> bool:
            code, body = get_json(poll.url, timeout=15)
            periodic = body["checks"]["periodic"]
            if code == 503 and periodic.get("error") == "stalled":
                assert periodic["ok"] is False and periodic["tick_seconds"] >= 5
                stuck.add(body["worker"])
            elif code == 200:
                ready.add(body["worker"])
            return bool(stuck) and bool(ready - stuck)

        wait_until(one_stuck_one_ready, 90, "one worker stalled, the other still ready")
        stall.unlink()  # the task returns: the runner moves again
        poll.until(200)
    finally:
        stall.unlink(missing_ok=True)
        server.stop()
