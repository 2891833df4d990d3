"""A tiny run of bench/claim_cost.py on this pass's PostgreSQL test database: JSON complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claim_cost_bench_times_both_claims_and_cleans_up():
    from notifications.models import StoredEvent

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = dict(os.environ, DATABASE_URL=url)
    argv = [sys.executable, "bench/claim_cost.py", "--rounds", "1", "--repeat", "2"]
    done = subprocess.run(
        [*argv, "--batches", "1,5"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["database"] == db["NAME"]
    for n in (1, 5):
        assert summary[f"claim_ms_per_event_batch_{n}"] > 0
        assert summary[f"portable_over_claim_batch_{n}"] > 0
    assert summary["round_trip_ms"] > 0
    assert not StoredEvent.objects.exists()
