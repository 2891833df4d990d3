"""A tiny run of bench/e2e.py: servers, clients and emitters start, nothing lost, JSON complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.e2e import event_id

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
        # the CPU per unit of work (reported; too small to assert at this size), where the
        # sockets are
        assert shape["server_cpu_ms_per_event"] >= 0, shape
        assert shape["client_cpu_us_per_delivery"] >= 0, shape
        assert shape["server_idle_cpu_ms_per_s"] >= 0, shape
        assert shape["server_net_cpu_us_per_delivery"] >= 0, shape
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
