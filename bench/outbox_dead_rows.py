#!/usr/bin/env python
"""The outbox claim and the idle poll's check as the dead row versions since the last vacuum grow.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<scratch> \
        .venv/bin/python bench/outbox_dead_rows.py [--published 0,10000,50000] [--claims 100] \
        [--batch 8] [--rounds 3]

Every stored event leaves three versions of its row (inserted, numbered by the claim, published
by the settle), and until a vacuum the indexes the claim reads keep an entry for each old one.
For each N of `--published` the outbox table is emptied and filled with N events published as
they are (bench/e2e.py's `--published` rows: analyzed, not vacuumed), then `--claims`
rounds each store `--batch` events and claim and settle them, and as many idle checks run
(`claim()` with nothing to claim). Three plans, in alternating rounds, each on a table of its own
filling:

* `index scans` (the product, notifications/events/outbox.py `INDEX_SCANS_SQL`): plain index
  scans, which mark the dead entries they meet so later scans skip them;
* `index scans, JIT`: the same with JIT compilation allowed (PostgreSQL's default);
* `planner's choice` (the baseline, the plan before): the same statements without the settings;
  the planner picks bitmap scans, which visit every dead entry and its heap page each time, and
  JIT-compiles the claim once its estimated cost passes `jit_above_cost`.

Per plan and N: the median wall ms of a claim + settle and of an idle check, and the database
backend's CPU per claim + settle (read from /proc when the server runs on this machine). Use a
scratch database (migrated): the bench empties the outbox tables. Ends with ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench.e2e import (  # noqa: E402
    ANALYZE_SQL,
    NOT_VACUUMED_SQL,
    PUBLISH_SQL,
    PUBLISHED_MARKER,
    STORE_SQL,
)
from notifications.events import outbox  # noqa: E402
from notifications.models import EventTarget, StoredEvent  # noqa: E402

_JIT = ", set_config('jit', 'off', true)"
PLANS = {
    "index scans": (outbox.CLAIM_LOCK_SQL, outbox.INDEX_SCANS_SQL),
    "index scans, JIT": (
        outbox.CLAIM_LOCK_SQL.replace(_JIT, ""),
        outbox.INDEX_SCANS_SQL.replace(_JIT, ""),
    ),
    "planner's choice": ("SELECT pg_advisory_xact_lock(%(lock)s)", "SELECT 1"),
}
assert all(_JIT not in sql for sql in PLANS["index scans, JIT"]), "outbox.py's settings changed"


def backend_cpu(pid: int) -> float | None:
    """CPU seconds of the backend `pid` (None when the server is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def refill(published: int, stats: str) -> None:
    """An outbox of `published` events published and not vacuumed, nothing else; its
    statistics taken after they were published (`stats="after"`), or while they were still
    waiting (`"backlog"`: an autoanalyze during an outage, which then waits for a tenth of the
    table to change before it looks again)."""
    table = StoredEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {EventTarget._meta.db_table}, {table} RESTART IDENTITY CASCADE")
        cursor.execute(NOT_VACUUMED_SQL)
        if published:
            cursor.execute(STORE_SQL.format(n=published, marker=PUBLISHED_MARKER))
            if stats == "backlog":
                cursor.execute(ANALYZE_SQL)
            cursor.execute(PUBLISH_SQL.format(n=published, marker=PUBLISHED_MARKER))
        if stats == "after" or not published:
            cursor.execute(ANALYZE_SQL)


def store(n: int) -> None:
    rows = StoredEvent.objects.bulk_create(
        StoredEvent(name="SystemNotification", category="system", level="info", title="t")
        for _ in range(n)
    )
    EventTarget.objects.bulk_create(EventTarget(event=row, group="tenant.0") for row in rows)


def measure(plan: str, published: int, args: argparse.Namespace, pid: int) -> dict:
    claims, batch = args.claims, args.batch
    outbox.CLAIM_LOCK_SQL, outbox.INDEX_SCANS_SQL = PLANS[plan]
    refill(published, args.stats)
    claim_ms, check_ms, cpu = [], [], 0.0
    for _ in range(claims):
        store(batch)
        before = backend_cpu(pid)
        started = time.perf_counter()
        rows = outbox.claim(limit=100, check_first=False)
        outbox.settle([row.id for row in rows], [])
        claim_ms.append((time.perf_counter() - started) * 1000)
        after = backend_cpu(pid)
        if before is not None and after is not None:
            cpu += after - before
        if len(rows) != batch:
            raise SystemExit(f"{plan}: claimed {len(rows)} of {batch}")
        started = time.perf_counter()
        if outbox.claim(limit=100):  # an idle poll: its check finds nothing
            raise SystemExit(f"{plan}: an idle claim found events")
        check_ms.append((time.perf_counter() - started) * 1000)
    return {
        "claim_ms": statistics.median(claim_ms),
        "first_claim_ms": claim_ms[0],
        "check_ms": statistics.median(check_ms),
        "backend_cpu_ms_per_claim": cpu * 1000 / claims if backend_cpu(pid) is not None else None,
    }


def main(args: argparse.Namespace) -> dict:
    if connection.vendor != "postgresql":
        raise SystemExit("outbox_dead_rows.py measures PostgreSQL's plans: set DATABASE_URL.")
    if StoredEvent.objects.filter(published_at__isnull=True).exists():
        raise SystemExit("The outbox holds unpublished events: use a scratch database.")
    product = PLANS["index scans"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    sizes = [int(n) for n in args.published.split(",")]
    load0 = os.getloadavg()
    runs: dict[str, dict[int, list[dict]]] = {p: {n: [] for n in sizes} for p in PLANS}
    try:
        for _round in range(args.rounds):
            for n in sizes:
                for plan in PLANS:  # alternating: drift in the load hits both plans alike
                    runs[plan][n].append(measure(plan, n, args, pid))
    finally:
        outbox.CLAIM_LOCK_SQL, outbox.INDEX_SCANS_SQL = product
        refill(0, "after")
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {StoredEvent._meta.db_table} RESET (autovacuum_vacuum_threshold, "
                "autovacuum_vacuum_insert_threshold)"
            )
    load1 = os.getloadavg()
    summary: dict = {"batch": args.batch, "claims": args.claims, "rounds": args.rounds}
    summary["stats"] = args.stats
    summary["load"] = [round(x, 2) for x in (*load0, *load1)]
    print(
        f"load before {load0[0]:.2f}, after {load1[0]:.2f}; batches of {args.batch} events; "
        f"statistics taken {args.stats}"
    )
    for n in sizes:
        figures = {}
        for plan in PLANS:
            keys = runs[plan][n][0].keys()
            figures[plan] = {
                k: None
                if runs[plan][n][0][k] is None
                else round(statistics.median(r[k] for r in runs[plan][n]), 3)
                for k in keys
            }
            f = figures[plan]
            print(
                f"{n:>7} published before, {plan:>16}: claim + settle {f['claim_ms']} ms "
                f"(first {f['first_claim_ms']}), backend CPU {f['backend_cpu_ms_per_claim']} ms, "
                f"idle check {f['check_ms']} ms"
            )
        base, ours = figures["planner's choice"], figures["index scans"]
        summary[f"published_{n}"] = {
            "index_scans": ours,
            "index_scans_jit": figures["index scans, JIT"],
            "planners_choice": base,
            "claim_ratio": round(base["claim_ms"] / ours["claim_ms"], 2),
            "check_ratio": round(base["check_ms"] / ours["check_ms"], 2),
        }
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--published", default="0,10000,50000")
    parser.add_argument("--claims", type=int, default=100, help="claim rounds per measurement")
    parser.add_argument("--batch", type=int, default=8, help="events per claim")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--stats",
        choices=("after", "backlog"),
        default="after",
        help="the table's statistics: taken after the events were published, or while they "
        "were still waiting (as an autoanalyze during an outage leaves them)",
    )
    print(json.dumps(main(parser.parse_args()), separators=(",", ":")), flush=True)
