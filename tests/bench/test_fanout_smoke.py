"""A 100-socket run of bench/fanout.py: every server starts, nothing is lost, JSON complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "sockets",
    "single_p50_ms",
    "single_p99_ms",
    "deliveries_per_s",
    "burst_p99_ms",
    "lost",
    "kib_per_socket",
    "bare_deliveries_per_s",
    "stock_channels_deliveries_per_s",
}


@pytest.mark.live
@pytest.mark.timeout(90)
def test_fanout_bench_smoke_run_loses_nothing(redis_url):
    env = dict(os.environ, REDIS_URL=redis_url)
    env.pop("DATABASE_URL", None)  # the bench makes its own scratch database
    env.pop("DJANGO_SETTINGS_MODULE", None)  # as run from a shell (pytest-django sets it)
    argv = [sys.executable, "bench/fanout.py", "--sockets", "100", "--events", "20"]
    argv += ["--singles", "3", "--tenants", "2", "--users-per-tenant", "2"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=80)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary.keys() >= KEYS
    assert summary["sockets"] == 100
    assert summary["lost"] == 0
    for name, row in summary["servers"].items():
        assert row["sockets"] == 100, (name, row)
        assert row["lost"] == 0, (name, row)
        assert row["deliveries_per_s"] > 0, (name, row)
