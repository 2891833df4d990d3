"""Small runs of bench/fanout.py: every server starts, nothing is lost, JSON complete; the
scale-out and GC figures it adds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fanout import Target, c_client_max_events, gc_report, parse_args
from tests.conftest import require_program

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


@pytest.mark.live
@pytest.mark.timeout(120)
def test_two_server_processes_report_their_cost_per_delivery_and_gc_pauses(redis_url, tmp_path):
    env = dict(os.environ, REDIS_URL=redis_url)
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # A burst big enough to take CPU time that /proc can see (10 ms ticks): 400 events × 60
    # sockets is ~25,000 deliveries, tens of ms even with direct, coalesced writes.
    argv = [sys.executable, "bench/fanout.py", "--sockets", "60", "--events", "400"]
    argv += ["--singles", "3", "--tenants", "2", "--users-per-tenant", "2", "--servers", "uvicorn"]
    argv += ["--server-procs", "2", "--gc-trace", str(tmp_path)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])["servers"]["product/uvicorn"]
    assert (row["server_procs"], row["sockets"], row["lost"]) == (2, 60, 0)
    assert row["deliveries_per_server_cpu_s"] > 0
    assert row["burst_deliveries_per_server_cpu_s"] > 0
    assert len(row["server_cpu_us_per_delivery_by_proc"]) == 2
    assert len(row["server_cpu_share_burst_by_proc"]) == 2
    assert [e["id"] for e in row["single_events"]] == [1, 2, 3]
    assert set(row["gc"]["single"]) == {"gen0", "gen1", "gen2"}
    assert len(row["gc"]["events"]) == 3
    traces = list(tmp_path.glob("gc.*.jsonl"))
    assert len(traces) == 2  # one per server process
    assert all(json.loads(t.read_text().splitlines()[0])["gen"] in (0, 1, 2) for t in traces)


def test_a_collection_counts_against_the_events_whose_window_it_overlaps(tmp_path):
    target = Target("product/uvicorn", "product", "uvicorn", "p", ports=[1])
    target.gc_trace = str(tmp_path / "gc")
    rows = [  # start (s), wall ms, generation
        {"t": 10.05, "ms": 20.0, "cpu_ms": 5.0, "gen": 0, "collected": 3},
        {"t": 10.50, "ms": 300.0, "cpu_ms": 100.0, "gen": 2, "collected": 0},
        {"t": 12.00, "ms": 1.0, "cpu_ms": 1.0, "gen": 1, "collected": 0},
    ]
    (tmp_path / "gc.1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    events = [  # event 1: 10.0-10.1 s; event 2: 10.6-10.7 s (inside the full collection)
        {"id": 1, "emitted_at": 10.0, "p50_ms": 50.0, "p99_ms": 90.0, "max_ms": 100.0},
        {"id": 2, "emitted_at": 10.6, "p50_ms": 50.0, "p99_ms": 90.0, "max_ms": 100.0},
    ]
    report = gc_report(target, events, (10.0, 11.0), (11.0, 13.0))
    assert [(e["id"], e["gc"]) for e in report["events"]] == [(1, [[0, 20.0]]), (2, [[2, 300.0]])]
    assert report["single"]["gen0"]["n"] == 1 and report["single"]["gen2"]["max_ms"] == 300.0
    assert report["single"]["gen0"]["collected"] == 3
    assert report["burst"]["gen1"]["n"] == 1 and report["burst"]["gen0"]["n"] == 0


@pytest.mark.live
@pytest.mark.timeout(300)
def test_the_c_client_loses_nothing_reports_the_same_keys_and_the_scale_out_figure(redis_url):
    require_program("gcc")  # fanout.py compiles bench/wsclient.c with it
    env = dict(os.environ, REDIS_URL=redis_url)
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    argv = [sys.executable, "bench/fanout.py", "--sockets", "60", "--events", "50"]
    argv += ["--singles", "3", "--tenants", "2", "--users-per-tenant", "2", "--servers", "uvicorn"]
    runs = {}
    for impl, extra in (("python", []), ("c", ["--scale-out", "--scale-out-rounds", "2"])):
        done = subprocess.run(
            [*argv, "--client-impl", impl, *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,  # the C run measures four times (two rounds of 1 and 2 processes)
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs[impl] = json.loads(done.stdout.strip().splitlines()[-1])
    c, py = runs["c"], runs["python"]
    assert c["client_impl"] == "c" and py["client_impl"] == "python"
    assert c.keys() - py.keys() == {"scale_out_ratio", "scale_out_rows", "scale_out_rounds"}
    assert py.keys() <= c.keys()
    row = c["servers"]["product/uvicorn"]
    assert row.keys() == py["servers"]["product/uvicorn"].keys()
    assert (row["sockets"], row["lost"], row["duplicates"], row["closed"]) == (60, 0, 0, {})
    assert [e["id"] for e in row["single_events"]] == [1, 2, 3]
    assert row["client_cpu_us_per_delivery_burst"] is not None
    one, two = c["scale_out_rows"]  # the best round of each
    assert (one["server_procs"], one["sockets"], one["lost"]) == (1, 60, 0)
    assert (two["server_procs"], two["sockets"], two["lost"], two["duplicates"]) == (2, 60, 0, 0)
    rounds = c["scale_out_rounds"]
    assert [r["server_procs"] for r in rounds] == [1, 2, 1, 2]  # alternating, the first is `row`
    assert rounds[0]["deliveries_per_s"] == row["deliveries_per_s"]
    assert one["deliveries_per_s"] == max(r["deliveries_per_s"] for r in rounds[::2])
    assert c["lost"] == 0
    assert c["scale_out_ratio"] == round(two["deliveries_per_s"] / one["deliveries_per_s"], 3)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--sockets", "0"], "--sockets must be at least 1, not 0"),
        (["--events", "-5"], "--events must be at least 0, not -5"),
        (["--client-procs", "0"], "--client-procs must be at least 1, not 0"),
        (["--server-procs", "0"], "--server-procs must be at least 1, not 0"),
        (["--scale-out-rounds", "0"], "--scale-out-rounds must be at least 1, not 0"),
        (["--single-timeout", "0"], "--single-timeout must be a positive number of seconds"),
        (["--events", "0", "--singles", "0"], "there would be nothing to measure"),
        # the C client ignores ids above 2^20 (bench/wsclient.c MAX_EVENT_ID) as strays: such a
        # run would report every event past the bound lost
        (
            ["--client-impl", "c", "--events", str(2**20), "--singles", "1"],
            f"--singles + --events is {2**20 + 1}: the C client counts at most {2**20} events",
        ),
    ],
)
def test_a_bad_argument_is_refused_with_a_clear_error_before_anything_starts(argv, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2  # argparse's usage error
    assert says in capsys.readouterr().err


def test_the_c_client_bound_is_read_from_its_source_and_the_largest_run_is_accepted():
    assert c_client_max_events() == 2**20
    assert parse_args(["--client-impl", "c", "--events", str(2**20 - 5), "--singles", "5"])
    # the Python client has no such bound
    assert parse_args(["--events", str(2**20), "--singles", "1"]).events == 2**20
