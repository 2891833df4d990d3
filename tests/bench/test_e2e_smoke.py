"""A tiny run of bench/e2e.py: servers, clients and emitters start, nothing lost, JSON complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.e2e import cpu_per_unit, event_id

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "multi_tenant_events_per_s",
    "multi_tenant_p99_ms",
    "busy_tenant_events_per_s",
    "busy_tenant_p99_ms",
    "request_after_commit_p99_ms",
    "lost",
    "duplicates",
}


@pytest.mark.live
@pytest.mark.timeout(300)
def test_e2e_bench_smoke_run_loses_nothing(redis_url):
    """On DATABASE_URL when this pass has one (a scratch database on that server, two workers),
    else a scratch SQLite file; with --trace, commit → published comes split at the claim and
    the emitters' publisher rounds timed step by step."""
    env = dict(os.environ, REDIS_URL=redis_url)
    argv = [sys.executable, "bench/e2e.py", "--duration", "2", "--tenants", "2"]
    argv += ["--sockets-per-tenant", "2", "--busy-sockets", "4", "--multi-rate", "20"]
    argv += ["--busy-rate", "10", "--emitters", "2", "--threads", "1", "--clients", "1"]
    argv += ["--trace"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary.keys() >= KEYS
    assert summary["lost"] == 0
    for shape in summary["shapes"].values():
        assert shape["committed"] > 0, shape
        assert shape["events_per_s"] > 0, shape
        assert shape["sockets"] == 4, shape
        # the CPU per unit of work is reported for every part (its arithmetic: the tests
        # below; too small to compare at this size), and where the sockets are
        assert {
            "server_cpu_ms_per_event",
            "client_cpu_us_per_delivery",
            "server_idle_cpu_ms_per_s",
            "server_net_cpu_us_per_delivery",
            "emitter_cpu_ms_per_event",
            "database_cpu_ms_per_event",
        } <= shape.keys(), shape
        assert sum(shape["worker_sockets"]) == 4, shape
        assert len(shape["worker_sockets"]) == summary["workers"], shape
        assert shape["claimed_to_published_p50_ms"] >= 0, shape  # (both the database's clock)
        steps = shape["publisher_rounds"]
        assert steps["rounds"] >= 0 and len(steps["claim"]) == 2, steps  # p50, p99


def test_client_reads_the_event_id_from_the_frame_head_or_parses_it():
    """The bench's clients skip json.loads for the server's compact event frame; any other
    layout (or frame type) is parsed in full."""
    assert event_id(b'{"type":"event","id":42,"event":"x","data":{"id":7}}') == 42
    assert event_id(b'{"id": 42, "type": "event"}') == 42
    assert event_id(b'{"type":"event","id":"42","event":"x"}') == 42
    assert event_id(b'{"type":"welcome","socket_id":"s"}') is None


def test_cpu_per_unit_divides_each_part_by_its_work_and_nets_out_the_idle_servers():
    figures = cpu_per_unit(
        server_cpu=2.0,  # CPU-s over the shape's window
        idle_rate=0.05,  # CPU-s per s with the sockets open and no events
        server_wall=10.0,
        events=1000,
        deliveries=4000,
        client_cpu_s=0.4,
        emitter_cpu_s=0.9,
        database_cpu_s=0.8,
    )
    assert figures == {
        "server_cpu_ms_per_event": 2.0,
        "server_cpu_us_per_delivery": 500.0,
        "server_idle_cpu_ms_per_s": 50.0,
        "server_net_cpu_us_per_delivery": 375.0,  # (2.0 - 0.05 × 10) / 4000
        "client_cpu_us_per_delivery": 100.0,
        "emitter_cpu_ms_per_event": 0.9,
        "database_cpu_ms_per_event": 0.8,
    }


def test_cpu_per_unit_of_a_shape_that_did_nothing_is_zero_not_an_error():
    idle = {
        "server_cpu": 0.3,
        "idle_rate": 0.1,  # idling cost more than the window's CPU: never negative
        "server_wall": 10.0,
        "client_cpu_s": 0.0,
        "emitter_cpu_s": 0.0,
        "database_cpu_s": None,  # SQLite: no sampler
    }
    figures = cpu_per_unit(events=0, deliveries=0, **idle)
    assert figures["server_cpu_ms_per_event"] == 0.0
    assert figures["server_net_cpu_us_per_delivery"] == 0.0
    assert figures["database_cpu_ms_per_event"] == 0.0
    assert cpu_per_unit(events=10, deliveries=10, **idle)["server_net_cpu_us_per_delivery"] == 0.0
