"""GET /metrics: who may read it, what it counts, and one sum over several uvicorn workers."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.urls import resolve
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from notifications.models import StoredEvent
from tests.liveserver import Uvicorn, database_url_for_servers, get, wait_until


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


@pytest.mark.django_db
def test_the_grafana_dashboard_queries_only_metrics_the_platform_exports():
    import json
    import re

    from config import metrics
    from tests.liveserver import BASE_DIR

    dashboard = json.loads((BASE_DIR / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"hotspot_[a-z_]+", e)}
    exported = {"hotspot_http_requests_total"} | {
        f"hotspot_http_request_duration_seconds{suffix}" for suffix in ("_bucket", "_sum", "_count")
    }
    exported |= {family.name for family in metrics.OutboxCollector().collect()}
    assert used and used <= exported, used - exported
