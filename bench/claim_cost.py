#!/usr/bin/env python
"""The outbox's PostgreSQL claim + settle per event, beside the portable claim on the same database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<scratch> \
        .venv/bin/python bench/claim_cost.py [--rounds 6] [--repeat 50] [--batches 1,100]

What is timed is what a publisher does (notifications/events/relay.py): `outbox.claim(limit=n)`
(on PostgreSQL: the advisory lock, then the one batched statement `_CLAIM_SQL` that numbers,
takes the horizon and leases) and `outbox.settle()` of the whole batch. The baseline, in
alternating rounds of the same run on the same database: the portable claim (`_claim_orm`, what
SQLite runs and PostgreSQL ran before the batched statement: several statements under the same
lock, one UPDATE per new position) with the same settle; beside them the bare round trip of a
locked transaction (the lock and `SELECT 1`), the floor of any claim. Each sample stores `n`
events of its own first (not timed). Claim figures are per event: a sample's time over `n`;
quote the ratio portable / claim.

Use a scratch database (migrated): it stores events to group tenant.999999 and deletes them at
the end, and it refuses to run if the outbox holds unpublished events of anyone else (a live
publisher would take the rows, and they would be claimed with the bench's). PostgreSQL only:
elsewhere both claims are the same code. Ends with ONE JSON line.
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

from django.db import connection, transaction  # noqa: E402
from django.db.models import prefetch_related_objects  # noqa: E402
from django.utils import timezone  # noqa: E402

from notifications.events import outbox  # noqa: E402
from notifications.models import EventTarget, StoredEvent  # noqa: E402

GROUP = "tenant.999999"


def store(n: int) -> None:
    events = StoredEvent.objects.bulk_create(
        StoredEvent(name="SystemNotification", category="system", level="info", title="t")
        for _ in range(n)
    )
    EventTarget.objects.bulk_create(EventTarget(event=e, group=GROUP) for e in events)


def product_claim(n: int) -> list[StoredEvent]:
    """The publisher's call (relay.py: claim(limit=..., check_first=...))."""
    return outbox.claim(limit=n, check_first=True)


def portable_claim(n: int) -> list[StoredEvent]:
    """The same claim by the portable path (claim() minus its PostgreSQL branch)."""
    if not outbox._claimable(timezone.now()).exists():
        return []
    rows = outbox._claim_orm(None, n)
    prefetch_related_objects(rows, "targets")
    return rows


def round_trip() -> float:
    """Milliseconds of the floor of any claim: a transaction that takes the lock, `SELECT 1`."""
    started = time.perf_counter()
    with transaction.atomic():
        outbox._lock_claims()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    return (time.perf_counter() - started) * 1000


PATHS = {"claim": product_claim, "portable_claim": portable_claim}


def sample(path: str, n: int) -> float:
    """Milliseconds per event of one claim + settle of `n` freshly stored events."""
    store(n)
    started = time.perf_counter()
    rows = PATHS[path](n)
    outbox.settle([r.pk for r in rows], [])
    elapsed = (time.perf_counter() - started) * 1000 / n
    if len(rows) != n or any(not list(r.targets.all()) for r in rows):
        raise SystemExit(f"{path}: claimed {len(rows)} of {n} events (or without targets)")
    return elapsed


def main(args: argparse.Namespace) -> dict:
    if connection.vendor != "postgresql":
        raise SystemExit("claim_cost.py measures the PostgreSQL claim: set DATABASE_URL.")
    others = StoredEvent.objects.filter(published_at__isnull=True).exclude(targets__group=GROUP)
    if others.exists():
        raise SystemExit("The outbox holds unpublished events: use a scratch database.")
    batches = [int(b) for b in args.batches.split(",")]
    load0 = os.getloadavg()
    medians: dict[str, dict[int, list[float]]] = {p: {n: [] for n in batches} for p in PATHS}
    trips: list[float] = []
    try:
        for _round in range(args.rounds):
            trips.append(statistics.median(round_trip() for _ in range(args.repeat)))
            for n in batches:
                for path in PATHS:  # alternating, so drift in the load hits every path alike
                    runs = [sample(path, n) for _ in range(args.repeat)]
                    medians[path][n].append(statistics.median(runs))
        rows = StoredEvent.objects.count()  # the bench's settled events, kept until the end
    finally:
        StoredEvent.objects.filter(targets__group=GROUP).delete()
    load1 = os.getloadavg()
    summary: dict = {
        "database": connection.settings_dict["NAME"],
        "rows_in_table_at_end": rows,
        "rounds": args.rounds,
        "repeat": args.repeat,
        "load": [round(x, 2) for x in (*load0, *load1)],
    }
    summary["round_trip_ms"] = round(statistics.median(trips), 4)
    print(f"load before {load0[0]:.2f}, after {load1[0]:.2f}; {rows} rows in the table at the end")
    print(f"locked round trip (lock + SELECT 1): {summary['round_trip_ms']:.3f} ms")
    for n in batches:
        figures = {p: statistics.median(medians[p][n]) for p in PATHS}
        for path in PATHS:
            rounds = ", ".join(f"{m:.3f}" for m in medians[path][n])
            print(f"batch {n}: {path} {figures[path]:.3f} ms/event (round medians {rounds})")
        summary[f"claim_ms_per_event_batch_{n}"] = round(figures["claim"], 4)
        summary[f"portable_claim_ms_per_event_batch_{n}"] = round(figures["portable_claim"], 4)
        summary[f"portable_over_claim_batch_{n}"] = round(
            figures["portable_claim"] / figures["claim"], 3
        )
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=50, help="samples per path per round")
    parser.add_argument("--batches", default="1,100", help="events per claim, comma-separated")
    print(json.dumps(main(parser.parse_args()), separators=(",", ":")), flush=True)
