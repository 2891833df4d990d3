#!/usr/bin/env python
"""End-to-end benchmark: a committed event to every socket, through the whole product path.

    python bench/e2e.py [--duration 10] [--multi-rate 1000] [--busy-rate 300] [--emitters 4]

On DATABASE_URL (PostgreSQL: a scratch database created on that server and dropped at the end;
without it a scratch SQLite file and one worker) and REDIS_URL (default redis://127.0.0.1:6379/0,
keys under a prefix of the run's own). Starts the product under uvicorn with two workers (their
publishers start at lifespan startup), client processes that hold the sockets
(/ws/notifications/ with a JWT per user, the real consumer), and emitter processes that commit
`SystemNotification`s to tenants through `broadcast()` at an offered rate, each with the
publisher a server process runs (like a web worker: after commit a request only wakes it).
`--emitters-notify` runs them without one (like `manage.py shell`: the servers' publishers
are woken by NOTIFY).

Two shapes, one after the other on the same servers:

* multi-tenant: events spread round-robin over 50 tenants, 4 sockets each (200 sockets);
* busy tenant: every event to one tenant holding all 200 sockets.

Per shape it prints the offered and achieved rates (committed/s; committed and delivered to
every socket/s), commit → socket latency (the first and the last of the event's sockets; p50,
p99, max; from the end of COMMIT, one machine's monotonic clock), the time the committing
thread spent after its commit (the on_commit hooks: what a web request pays), lost and
duplicate deliveries, the database's wait profile (pg_stat_activity sampled every 20 ms:
`wait_event_type:wait_event`, `idle in transaction`, `active (CPU)`), and each party's CPU as a
share of one core (so a reader can tell whether the clients were the bottleneck), with the load
average. Ends with ONE JSON line (multi_tenant_events_per_s, multi_tenant_p99_ms,
busy_tenant_events_per_s, busy_tenant_p99_ms, request_after_commit_p99_ms, lost, duplicates,
and per-shape details).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import free_port, pct, split_frames, take_handshake  # noqa: E402

USERS_SCRIPT = """
import json, secrets, django
django.setup()
from rest_framework_simplejwt.tokens import AccessToken
from accounts.services import user_create
from tenants.services import tenant_create
from django.test.utils import override_settings
# A fast hasher for the set-up only (the sockets authenticate by JWT; never for real users).
override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]).enable()
PASSWORD = "Zq-" + secrets.token_urlsafe(12)
admin = user_create(username="e2e-root", password=PASSWORD, role="system_admin", by=None)
out = []
for t in range({tenants}):
    tenant = tenant_create(name=f"E2E Tenant {{t}}", slug=f"e2e-{{t}}",
                           contact_email=f"ops@e2e{{t}}.example", by=admin)
    for u in range(2):
        user = user_create(username=f"e2e-{{t}}-{{u}}", password=PASSWORD,
                           role="tenant_admin" if u == 0 else "staff", tenant=tenant, by=None)
        out.append({{"tenant": tenant.pk, "token": str(AccessToken.for_user(user))}})
print("USERS" + json.dumps(out))
"""


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process (this one by default)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_sockets(port: int, pids: list[int]) -> list[int]:
    """How many established connections to `port` each process holds (the kernel spreads a
    shape's sockets over the workers; one that holds most of them is the bottleneck)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    held = []
    for pid in pids:
        n = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        n += 1
        held.append(n)
    return held


def children(pid: int) -> list[int]:
    """The worker processes of a uvicorn supervisor (not multiprocessing's resource tracker)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    workers = []
    for child in pids:
        with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as f:
            if b"resource_tracker" in f.read():
                continue
        workers.append(child)
    return workers


# --- client process: holds sockets, records receipts ------------------------------------------


class Receipts:
    """Per event: sockets that got it (once), duplicate frames, first and last receipt time."""

    def __init__(self) -> None:
        self.count: Counter = Counter()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.duplicates = 0
        self.closed: Counter = Counter()


EVENT_HEAD = b'{"type":"event","id":'


def event_id(payload: bytes) -> int | None:
    """The id of an `event` frame, else None: read from the frame's head, which the server
    serializes compactly with "type" and "id" first (protocol.event_frame), so the clients do
    not parse 60,000 JSON documents a second on the machine the servers run on; any other
    layout is parsed in full."""
    if payload.startswith(EVENT_HEAD):
        end = payload.find(b",", len(EVENT_HEAD))
        digits = payload[len(EVENT_HEAD) : end]
        if end > 0 and digits.isdigit():
            return int(digits)
    frame = json.loads(payload)
    return int(frame["id"]) if frame.get("type") == "event" else None


class E2EClient(asyncio.Protocol):
    """Receive-only RFC 6455 client (as bench/fanout.py's WSClient): parses frames in
    `data_received`, dedupes by id per socket, answers pings."""

    def __init__(self, receipts: Receipts, welcomed: asyncio.Future, host: str, path: str) -> None:
        self.receipts, self.welcomed = receipts, welcomed
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n\r\n"
        ).encode()
        self.buf = bytearray()
        self.upgraded = False
        self.seen: set[int] = set()
        self.transport: asyncio.Transport | None = None
        self.stopping = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.welcomed.done():
            self.welcomed.set_result(False)
        elif not self.stopping:
            self.receipts.closed["closed early"] += 1

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buf
        buf += data
        if not self.upgraded:
            upgraded = take_handshake(buf)
            if upgraded is None:
                return
            if not upgraded:
                self.receipts.closed["handshake refused"] += 1
                self.transport.close()
                return
            self.upgraded = True
        r = self.receipts
        for opcode, payload in split_frames(buf):
            if opcode == 0x1:
                eid = event_id(payload)
                if eid is not None:
                    if eid in self.seen:
                        r.duplicates += 1
                    else:
                        self.seen.add(eid)
                        r.count[eid] += 1
                        r.first.setdefault(eid, now)
                        r.last[eid] = now
                elif not self.welcomed.done() and json.loads(payload).get("type") == "welcome":
                    self.welcomed.set_result(True)
            elif opcode == 0x8:
                with contextlib.suppress(Exception):
                    self._send(0x8, payload[:2])
                self.transport.close()
            elif opcode == 0x9:
                self._send(0xA, payload)


async def client_main(args) -> None:
    plan = json.loads(Path(args.plan).read_text())
    parsed = urlsplit(args.url)
    receipts = Receipts()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(50)
    held: Counter = Counter()
    protos: list[E2EClient] = []

    async def open_one(tenant: int, token: str) -> None:
        async with gate:
            fut = loop.create_future()
            path = f"/ws/notifications/?token={token}"
            try:
                _, proto = await loop.create_connection(
                    lambda: E2EClient(receipts, fut, parsed.netloc, path),
                    parsed.hostname,
                    parsed.port,
                )
            except OSError:
                receipts.closed["connect failed"] += 1
                return
            protos.append(proto)
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(fut, 60):
                    held[tenant] += 1

    await asyncio.gather(*(open_one(t, tok) for t, tok in plan))
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    print("READY " + json.dumps(held), flush=True)
    while True:  # "count": print the deliveries so far (the drain's progress); "stop"
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != "count":
            break
        print(f"COUNT {sum(receipts.count.values())}", flush=True)
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    for proto in protos:
        proto.stopping = True
        if proto.transport is not None:
            proto.transport.close()
    out = {
        "held": held,
        "count": receipts.count,
        "first": receipts.first,
        "last": receipts.last,
        "duplicates": receipts.duplicates,
        "closed": receipts.closed,
        "cpu_share": cpu / wall if wall else 0.0,
        "cpu_s": cpu,
    }
    Path(args.out).write_text(json.dumps(out))


# --- emitter process: commits events through broadcast() ----------------------------------------


def emitter_main(args) -> None:
    import django

    django.setup()
    from django.db import connection, transaction

    from notifications.events import relay
    from notifications.events.broadcast import broadcast
    from notifications.events.catalog import SystemNotification
    from notifications.models import StoredEvent
    from tenants.models import Tenant

    tenants = {t.pk: t for t in Tenant.objects.filter(pk__in=args.tenant_ids)}
    order = [tenants[pk] for pk in args.tenant_ids]
    rounds = trace_publisher(relay) if args.trace else None
    if not args.notify:
        relay.ensure_started()  # the publisher a server process runs
    threads = max(1, args.threads)
    interval = threads / args.rate if args.rate > 0 else 0.0
    events: list[list] = []
    while time.perf_counter() < args.start_at:
        time.sleep(0.005)
    cpu0 = cpu_seconds()
    begin = time.perf_counter()

    def emit(k: int) -> None:
        """One request thread: commits at its share of the rate (open loop, never ahead)."""
        marks: list[float] = []
        i = 0
        try:
            while True:
                due = begin + (i + k / threads) * interval
                now = time.perf_counter()
                if now - begin >= args.duration:
                    break
                if due > now:
                    time.sleep(due - now)
                tenant = order[(args.offset + (i * threads + k) * args.emitters) % len(order)]
                marks.clear()
                t0 = time.perf_counter()
                with transaction.atomic():
                    event = SystemNotification.create(message=f"e2e {i}", tenant=tenant)
                    transaction.on_commit(lambda: marks.append(time.perf_counter()))
                    stored = broadcast(event, exclude=None)
                    transaction.on_commit(lambda: marks.append(time.perf_counter()))
                done = time.perf_counter()
                # [id, tenant, committed at, after-commit hooks s, broadcast + commit s]
                events.append([stored.pk, tenant.pk, marks[0], marks[1] - marks[0], done - t0])
                i += 1
        finally:
            connection.close()

    pool = [threading.Thread(target=emit, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    emit_cpu = cpu_seconds() - cpu0
    emit_wall = time.perf_counter() - begin
    # Leave nothing leased behind: wait until the outbox is drained (by anyone), then stop.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not StoredEvent.objects.filter(published_at__isnull=True).exists():
            break
        time.sleep(0.05)
    if relay.current() is not None:
        from asgiref.sync import async_to_sync

        async_to_sync(relay.stop)()
    connection.close()
    # perf_counter (CLOCK_MONOTONIC) → the wall clock the database stamps claims with
    wall_offset = time.time() - time.perf_counter()
    Path(args.out).write_text(
        json.dumps(
            {
                "events": events,
                "cpu_share": emit_cpu / emit_wall if emit_wall else 0.0,
                "cpu_s": emit_cpu,
                "wall_offset": wall_offset,
                "rounds": rounds,
            }
        )
    )


def trace_publisher(relay) -> list[dict]:
    """`--trace`: time each round of this process's publisher (bench-only wrappers around
    the module functions its loop calls). One record per round that claimed events: when the
    first commit since the previous round woke it, when the round began (after the claim gap),
    the claim's round trip (lock wait, statement and its durable commit, on the DB thread),
    the send, and the settle; perf_counter seconds, comparable with the commits' marks."""
    rounds: list[dict] = []
    state: dict = {"wake": None, "round": None}
    wake, publish_pending, claim = relay.Publisher.wake, relay.publish_pending, relay.claim
    send, settle = relay._send, relay.settle

    def traced_wake(self) -> None:
        if state["wake"] is None:
            state["wake"] = time.perf_counter()
        wake(self)

    async def traced_publish_pending(**kwargs):
        record = {"woken": state["wake"], "begin": time.perf_counter()}
        state["wake"], state["round"] = None, record
        try:
            return await publish_pending(**kwargs)
        finally:
            record["end"] = time.perf_counter()
            if record.get("ids"):
                rounds.append(record)

    def traced_claim(**kwargs):
        t0 = time.perf_counter()
        rows = claim(**kwargs)
        record = state["round"]
        if record is not None:
            record.update(claim0=t0, claim1=time.perf_counter(), ids=[r.id for r in rows])
        return rows

    async def traced_send(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return await send(*args, **kwargs)
        finally:
            if state["round"] is not None:
                state["round"].update(send0=t0, send1=time.perf_counter())

    def traced_settle(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return settle(*args, **kwargs)
        finally:
            if state["round"] is not None:
                state["round"].update(settle0=t0, settle1=time.perf_counter())

    relay.Publisher.wake = traced_wake
    relay.publish_pending, relay.claim = traced_publish_pending, traced_claim
    relay._send, relay.settle = traced_send, traced_settle
    return rounds


# --- the orchestrator --------------------------------------------------------------------------


class WaitSampler(threading.Thread):
    """Samples pg_stat_activity of the scratch database: what its backends wait on, and (on a
    server on this machine) the CPU its backends used while sampled."""

    def __init__(self, url: str, dbname: str) -> None:
        super().__init__(daemon=True)
        self.url, self.dbname = url, dbname
        self.counts: Counter = Counter()
        self.samples = 0
        self.halt = threading.Event()
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the database's backends between their first and last sample."""
        return sum(self.cpu_last[pid] - self.cpu_first[pid] for pid in self.cpu_last)

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.halt.wait(0.02):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event, pid FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'",
                    [self.dbname],
                ).fetchall()
                self.samples += 1
                for *_, pid in rows:
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        cpu = cpu_seconds(pid)
                        self.cpu_first.setdefault(pid, cpu)
                        self.cpu_last[pid] = cpu
                for state, kind, name, _ in rows:
                    if state == "active":
                        label = f"{kind}:{name}" if kind else "active (CPU)"
                    elif state and state.startswith("idle in transaction"):
                        label = state
                    else:
                        continue
                    self.counts[label] += 1


class CpuSampler(threading.Thread):
    """Samples the servers' CPU (per worker) every 50 ms, so a shape's share can be read for
    exactly the window from its first commit to its last delivery (the emitters' exit and the
    drain's checks come later and are not the events' work)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: list[tuple[float, list[float]]] = []
        self.halt = threading.Event()

    def sample(self) -> None:
        self.samples.append((time.perf_counter(), [cpu_seconds(p) for p in self.pids]))

    def run(self) -> None:
        self.sample()
        while not self.halt.wait(0.05):
            self.sample()
        self.sample()

    def at(self, when: float) -> list[float]:
        """Each worker's CPU seconds at the first sample taken at or after `when`."""
        for t, cpu in self.samples:
            if t >= when:
                return cpu
        return self.samples[-1][1]


def scratch_database(url: str) -> tuple[str, str]:
    """CREATE a scratch database on the server of `url`: (its URL, its name)."""
    import psycopg

    parts = urlsplit(url)
    name = f"bench_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name)), name


def drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(db_url: str, sql: str, params: list) -> list[tuple]:
    """Rows of one statement on the scratch database, from this process: a `python -c` with
    django.setup() per question costs a second of CPU, which a loaded machine takes from the
    servers while they drain."""
    if db_url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(db_url[len("sqlite:///") :])) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


#: `--published`: rows as the outbox holds them between two vacuums: each inserted, numbered
#: (claim) and published (settle), as three versions. Autovacuum does not vacuum the table for
#: the run (so the dead versions stay in its indexes, as until the next vacuum) but still
#: analyzes it, and the filling ends with an ANALYZE: the planner has the statistics a running
#: platform's autoanalyze gives it. Only the rows it inserts (the setup's own events are left
#: to the publishers).
NOT_VACUUMED_SQL = (
    "ALTER TABLE notifications_storedevent SET (autovacuum_vacuum_threshold = 2147483647, "
    "autovacuum_vacuum_insert_threshold = -1)"
)
STORE_SQL = """
INSERT INTO notifications_storedevent (uuid, name, category, level, title, message, data,
    exclude_socket_id, occurred_at, publish_attempts, translations)
SELECT gen_random_uuid(), 'SystemNotification', 'system', 'info', 'System Notification',
    '{marker}', '{{}}'::jsonb, '', now() - ({n} - g) * interval '1 ms', 0, '{{}}'::jsonb
FROM generate_series(1, {n}) AS g;
INSERT INTO notifications_eventtarget ("group", roles, event_id)
SELECT 'tenant.0', NULL, id FROM notifications_storedevent WHERE message = '{marker}'
"""
PUBLISH_SQL = """
UPDATE notifications_storedevent SET position = id, replay_from = id, claimed_at = now(),
    lease_until = now() + interval '10 s', publish_attempts = 1 WHERE message = '{marker}';
UPDATE notifications_storedevent SET published_at = now(), lease_until = NULL
WHERE message = '{marker}'
"""
ANALYZE_SQL = "ANALYZE notifications_storedevent, notifications_eventtarget"
PUBLISHED_SQL = ";".join((NOT_VACUUMED_SQL, STORE_SQL, PUBLISH_SQL, ANALYZE_SQL))
PUBLISHED_MARKER = "published before the run"


def prefill_published(db_url: str, n: int) -> None:
    """`--published N` (PostgreSQL): N events published before the shapes, not vacuumed."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(PUBLISHED_SQL.format(n=int(n), marker=PUBLISHED_MARKER))


def outbox_pending(db_url: str) -> int:
    """Stored events not yet published (the outbox's backlog)."""
    table = "notifications_storedevent"
    return query(db_url, f"SELECT count(*) FROM {table} WHERE published_at IS NULL", [])[0][0]


def publish_lag(db_url: str, ids: list[int], committed: dict[int, float] | None = None) -> dict:
    """Commit → published (the outbox's share of the latency): p50/p99 ms of
    published_at - occurred_at over the shape's events, and how many stayed unpublished.

    With `committed` (event id → wall time of its COMMIT) also the two halves: commit →
    claimed (`claimed_at`, the first claim's transaction start, before its lock wait: the
    wake-up and the claim cadence) and claimed → published (lock wait, the claim statement
    and its durable commit, the send, up to the settle's start)."""
    empty = {"p50_ms": 0.0, "p99_ms": 0.0, "unpublished": 0}
    if not ids:
        return empty | {"to_claim_p50_ms": 0.0, "to_claim_p99_ms": 0.0}
    rows = query(
        db_url,
        "SELECT id, occurred_at, claimed_at, published_at FROM notifications_storedevent "
        "WHERE id >= %s AND id <= %s",
        [min(ids), max(ids)],
    )

    def at(value):
        return seconds(value) if value else None

    rows = [(pk, seconds(occurred), at(claimed), at(pub)) for pk, occurred, claimed, pub in rows]
    sent = [published - occurred for _, occurred, _, published in rows if published]
    committed = committed or {}
    to_claim = [c - committed[i] for i, _, c, _ in rows if c and i in committed]
    claim_to_pub = [p - c for _, _, c, p in rows if c and p]
    return {
        "p50_ms": round(pct(sent, 0.5) * 1000, 1),
        "p99_ms": round(pct(sent, 0.99) * 1000, 1),
        "unpublished": len(rows) - len(sent),
        "to_claim_p50_ms": round(pct(to_claim, 0.5) * 1000, 1),
        "to_claim_p99_ms": round(pct(to_claim, 0.99) * 1000, 1),
        "claim_to_published_p50_ms": round(pct(claim_to_pub, 0.5) * 1000, 1),
        "claim_to_published_p99_ms": round(pct(claim_to_pub, 0.99) * 1000, 1),
    }


def seconds(value) -> float:
    """A timestamp column as epoch seconds (a datetime from PostgreSQL, text from SQLite)."""
    from datetime import datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.timestamp()


def round_profile(rounds: list[dict], committed: dict[int, float]) -> dict:
    """`--trace`: p50/p99 ms of each step of the emitters' publisher rounds (see
    trace_publisher), per event for the waits and per round for the steps."""
    steps: dict[str, list[float]] = {
        "commit_to_round": [],  # per event: its commit → its round's start (cadence, wake)
        "wake_to_round": [],  # per round: the first wake since the last → the round's start
        "round_to_claim": [],  # the hop to the DB thread
        "claim": [],  # lock wait + statement + durable commit, one round trip
        "claim_to_send": [],
        "send": [],
        "settle": [],
    }
    sizes = []
    for r in rounds:
        sizes.append(len(r["ids"]))
        steps["commit_to_round"] += [r["begin"] - committed[i] for i in r["ids"] if i in committed]
        if r.get("woken"):
            steps["wake_to_round"].append(r["begin"] - r["woken"])
        steps["round_to_claim"].append(r["claim0"] - r["begin"])
        steps["claim"].append(r["claim1"] - r["claim0"])
        if "send0" in r:
            steps["claim_to_send"].append(r["send0"] - r["claim1"])
            steps["send"].append(r["send1"] - r["send0"])
        if "settle0" in r:
            steps["settle"].append(r["settle1"] - r["settle0"])
    out = {
        name: [round(pct(v, 0.5) * 1000, 2), round(pct(v, 0.99) * 1000, 2)]
        for name, v in steps.items()
    }
    out["rounds"] = len(rounds)
    out["events_per_round_p50"] = pct(sizes, 0.5) if sizes else 0
    return out


def cpu_per_unit(
    *,
    server_cpu: float,
    idle_rate: float,
    server_wall: float,
    events: int,
    deliveries: int,
    client_cpu_s: float,
    emitter_cpu_s: float,
    database_cpu_s: float | None,
) -> dict:
    """A shape's CPU per event and per delivery, by part (seconds in, ms or µs out; 0.0 where
    nothing was done). `server_net_cpu_us_per_delivery` takes off what the servers spend idle
    (`idle_rate` CPU-s per s, measured before the shape) over the same wall time."""

    def per_delivery(cpu: float) -> float:
        return round(cpu * 1e6 / deliveries, 2) if deliveries else 0.0

    def per_event(cpu: float) -> float:
        return round(cpu * 1000 / events, 3) if events else 0.0

    return {
        "server_cpu_ms_per_event": per_event(server_cpu),
        "server_cpu_us_per_delivery": per_delivery(server_cpu),
        "server_idle_cpu_ms_per_s": round(idle_rate * 1000, 1),
        "server_net_cpu_us_per_delivery": per_delivery(
            max(0.0, server_cpu - idle_rate * server_wall)
        ),
        "client_cpu_us_per_delivery": per_delivery(client_cpu_s),
        "emitter_cpu_ms_per_event": per_event(emitter_cpu_s),
        "database_cpu_ms_per_event": per_event(database_cpu_s or 0.0),
    }


def run_shape(name: str, plan: list[list], tenant_ids: list[int], rate: float, args, env, server):
    """One shape: clients connect, emitters commit for `duration`, then the figures."""
    scratch = Path(tempfile.mkdtemp(prefix="e2e-shape-"))
    url = f"ws://127.0.0.1:{server['port']}"
    clients = []
    for k in range(args.clients):
        part = plan[k :: args.clients]
        (scratch / f"plan{k}.json").write_text(json.dumps(part))
        argv = [sys.executable, __file__, "client", "--plan", str(scratch / f"plan{k}.json")]
        argv += ["--url", url, "--out", str(scratch / f"client{k}.json")]
        clients.append(
            subprocess.Popen(
                argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        )
    held: Counter = Counter()
    for proc in clients:
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit(f"a client failed to connect: {line!r}")
        held.update({int(k): v for k, v in json.loads(line[5:]).items()})
    sockets = sum(held.values())
    sampler = WaitSampler(server["db_url"], server["db_name"]) if server["db_name"] else None
    # What the servers spend with the sockets open and no events (timers, heartbeats, polls):
    # over a long drain it would otherwise be counted as the events' cost. (After a second:
    # the handshakes' aftermath, presence joins and the socket freezer, is not idle work.)
    time.sleep(1.0)
    idle0, idle_t0 = sum(cpu_seconds(p) for p in server["workers"]), time.perf_counter()
    time.sleep(2.0)
    idle_rate = (sum(cpu_seconds(p) for p in server["workers"]) - idle0) / (
        time.perf_counter() - idle_t0
    )
    start_at = time.perf_counter() + 3.0  # emitters finish django.setup() first
    emitters = []
    for e in range(args.emitters):
        argv = [sys.executable, __file__, "emitter", "--rate", str(rate / args.emitters)]
        argv += ["--duration", str(args.duration), "--start-at", str(start_at)]
        argv += ["--offset", str(e), "--out", str(scratch / f"emitter{e}.json")]
        argv += ["--threads", str(args.threads), "--emitters", str(args.emitters)]
        argv += ["--tenant-ids", *map(str, tenant_ids)]
        if args.emitters_notify:
            argv.append("--notify")
        if args.trace:
            argv.append("--trace")
        emitters.append(subprocess.Popen(argv, cwd=ROOT, env=env))
    while time.perf_counter() < start_at:
        time.sleep(0.01)
    workers = server["workers"]
    cpu_sampler = CpuSampler(workers)
    cpu_sampler.start()
    load0 = os.getloadavg()
    if sampler:
        sampler.start()
    for proc in emitters:
        proc.wait(args.duration + 120)
    if sampler:
        sampler.halt.set()
    emit_wall = time.perf_counter() - start_at
    load1 = os.getloadavg()
    deadline = time.monotonic() + 30
    while outbox_pending(server["db_url"]) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    events, emit_cpu, emit_cpu_s, committed_wall, rounds = [], [], 0.0, {}, []
    for e in range(args.emitters):
        data = json.loads((scratch / f"emitter{e}.json").read_text())
        events += data["events"]
        emit_cpu.append(data["cpu_share"])
        emit_cpu_s += data.get("cpu_s", 0.0)
        committed_wall |= {ev[0]: ev[2] + data["wall_offset"] for ev in data["events"]}
        rounds += data["rounds"] or []
    # The drain: until every socket has every event, or the deliveries stop moving for
    # `--drain-idle` seconds (what is missing then is lost, not late).
    expected = sum(held[tenant] for _, tenant, *_ in events)
    delivered, moved, drain_start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - drain_start < 120:
        total = 0
        for proc in clients:
            proc.stdin.write("count\n")
            proc.stdin.flush()
            total += int(proc.stdout.readline().split()[1])
        if total != delivered:
            delivered, moved = total, time.monotonic()
        if total >= expected or time.monotonic() - moved > args.drain_idle:
            break
        time.sleep(0.2)
    drain_s = time.monotonic() - drain_start
    cpu_sampler.halt.set()
    cpu_sampler.join()
    worker_sockets = server_sockets(server["port"], workers)
    lag = publish_lag(server["db_url"], [ev[0] for ev in events], committed_wall)
    profile = round_profile(rounds, {ev[0]: ev[2] for ev in events}) if args.trace else None
    for proc in clients:
        proc.stdin.write("stop\n")
        proc.stdin.flush()
    for proc in clients:
        proc.wait(60)

    count, first, last = Counter(), {}, {}
    duplicates, closed, client_cpu, client_cpu_s = 0, Counter(), [], 0.0
    for k in range(args.clients):
        data = json.loads((scratch / f"client{k}.json").read_text())
        count.update({int(i): c for i, c in data["count"].items()})
        for i, t in data["first"].items():
            first[int(i)] = min(t, first.get(int(i), t))
        for i, t in data["last"].items():
            last[int(i)] = max(t, last.get(int(i), t))
        duplicates += data["duplicates"]
        closed.update(data["closed"])
        client_cpu.append(data["cpu_share"])
        client_cpu_s += data["cpu_s"]
    shutil.rmtree(scratch, ignore_errors=True)

    lost = sum(max(0, held[tenant] - count[eid]) for eid, tenant, *_ in events)
    complete = [ev for ev in events if count[ev[0]] >= held[ev[1]] > 0]
    to_first = [first[ev[0]] - ev[2] for ev in events if ev[0] in first]
    to_all = [last[ev[0]] - ev[2] for ev in complete]
    after_commit = [ev[3] for ev in events]
    call = [ev[4] for ev in events]
    t_begin = min((ev[2] for ev in events), default=0.0)
    t_commit_end = max((ev[2] for ev in events), default=0.0)
    t_deliver_end = max((last[ev[0]] for ev in complete), default=0.0)
    # The servers' CPU from the first commit to the last delivery (the emitters started at
    # start_at; a shape that delivered nothing: until the drain gave up).
    window_end = max(last.values(), default=0.0) or cpu_sampler.samples[-1][0]
    server_wall = window_end - start_at
    worker_cpu = [
        b - a for a, b in zip(cpu_sampler.at(start_at), cpu_sampler.at(window_end), strict=True)
    ]
    server_cpu = sum(worker_cpu)
    n = len(events)
    deliveries = sum(count.values())
    waits = sampler.counts.most_common(8) if sampler else []
    row = {
        "shape": name,
        "sockets": sockets,
        "tenants": len(held),
        "offered_events_per_s": rate,
        "committed": n,
        "committed_per_s": round(n / (t_commit_end - t_begin), 1) if n > 1 else 0.0,
        "events_per_s": (
            round(len(complete) / (t_deliver_end - t_begin), 1) if len(complete) > 1 else 0.0
        ),
        "deliveries_per_s": (
            round(sum(held[ev[1]] for ev in complete) / (t_deliver_end - t_begin))
            if len(complete) > 1
            else 0
        ),
        "first_socket_p50_ms": round(pct(to_first, 0.5) * 1000, 1),
        "p50_ms": round(pct(to_all, 0.5) * 1000, 1),
        "p99_ms": round(pct(to_all, 0.99) * 1000, 1),
        "max_ms": round(max(to_all, default=float("nan")) * 1000, 1),
        "after_commit_p50_ms": round(pct(after_commit, 0.5) * 1000, 3),
        "after_commit_p99_ms": round(pct(after_commit, 0.99) * 1000, 3),
        "after_commit_max_ms": round(max(after_commit, default=float("nan")) * 1000, 3),
        "emit_call_p50_ms": round(pct(call, 0.5) * 1000, 2),
        "published_p50_ms": lag["p50_ms"],
        "published_p99_ms": lag["p99_ms"],
        "unpublished": lag["unpublished"],
        "to_claimed_p50_ms": lag["to_claim_p50_ms"],
        "to_claimed_p99_ms": lag["to_claim_p99_ms"],
        "claimed_to_published_p50_ms": lag.get("claim_to_published_p50_ms", 0.0),
        "claimed_to_published_p99_ms": lag.get("claim_to_published_p99_ms", 0.0),
        "publisher_rounds": profile,
        "drain_s": round(drain_s, 1),
        "lost": lost,
        "duplicates": duplicates,
        "closed": dict(closed),
        "db_samples": sampler.samples if sampler else 0,
        "db_waits": dict(waits),
        "cpu_share": {
            "clients": round(sum(client_cpu), 2),
            "emitters": round(sum(emit_cpu), 2),
            "servers": round(server_cpu / server_wall, 2) if server_wall else 0.0,
            "emitters_wall_s": round(emit_wall, 1),
            "servers_wall_s": round(server_wall, 1),
        },
        # CPU per unit of work: robust where shares and latencies are not (a shared machine)
        **cpu_per_unit(
            server_cpu=server_cpu,
            idle_rate=idle_rate,
            server_wall=server_wall,
            events=n,
            deliveries=deliveries,
            client_cpu_s=client_cpu_s,
            emitter_cpu_s=emit_cpu_s,
            database_cpu_s=sampler.cpu_s if sampler else None,
        ),
        "worker_cpu_s": [round(c, 2) for c in worker_cpu],
        "worker_sockets": worker_sockets,
        "load": [round(x, 2) for x in (*load0, *load1[:1])],
    }
    print(
        f"{name:<13} {sockets} sockets/{len(held)} tenants  offered {rate:g}/s  committed "
        f"{row['committed_per_s']}/s  committed+delivered to all {row['events_per_s']}/s "
        f"({row['deliveries_per_s']} deliveries/s)\n"
        f"{'':<13} commit→first socket p50 {row['first_socket_p50_ms']} ms; commit→every socket "
        f"p50/p99/max {row['p50_ms']}/{row['p99_ms']}/{row['max_ms']} ms\n"
        f"{'':<13} after commit (on_commit hooks) p50/p99/max {row['after_commit_p50_ms']}/"
        f"{row['after_commit_p99_ms']}/{row['after_commit_max_ms']} ms; broadcast+commit p50 "
        f"{row['emit_call_p50_ms']} ms\n"
        f"{'':<13} commit→published p50/p99 {row['published_p50_ms']}/"
        f"{row['published_p99_ms']} ms (commit→claimed {row['to_claimed_p50_ms']}/"
        f"{row['to_claimed_p99_ms']}, claimed→published {row['claimed_to_published_p50_ms']}/"
        f"{row['claimed_to_published_p99_ms']}); unpublished {row['unpublished']}; "
        f"drain {row['drain_s']} s\n"
        + (
            f"{'':<13} emitters' publisher rounds, p50/p99 ms: {profile}\n"
            if profile is not None
            else ""
        )
        + f"{'':<13} lost {lost}  duplicates {duplicates}  closed {dict(closed) or '-'}\n"
        f"{'':<13} DB waits over {row['db_samples']} samples: {row['db_waits'] or '-'}\n"
        f"{'':<13} CPU (share of one core): clients {row['cpu_share']['clients']}, emitters "
        f"{row['cpu_share']['emitters']}, servers {row['cpu_share']['servers']}; "
        f"load {row['load']}\n"
        f"{'':<13} CPU per unit: servers {row['server_cpu_ms_per_event']} ms/event = "
        f"{row['server_cpu_us_per_delivery']} µs/delivery, {row['server_net_cpu_us_per_delivery']}"
        f" net of idle {row['server_idle_cpu_ms_per_s']} ms/s (per worker {row['worker_cpu_s']} "
        f"s, sockets {row['worker_sockets']}); clients {row['client_cpu_us_per_delivery']} "
        f"µs/delivery; emitters {row['emitter_cpu_ms_per_event']} ms/event; database "
        f"backends {row['database_cpu_ms_per_event']} ms/event",
        flush=True,
    )
    return row


def main(args) -> dict:
    run_prefix = f"{args.prefix}.e2e.{secrets.token_hex(3)}"
    env = dict(os.environ)
    env.update(
        REDIS_URL=args.redis_url,
        CHANNELS_PREFIX=run_prefix,
        DEBUG="0",
        LOG_LEVEL="WARNING",
        SECRET_KEY=env.get("SECRET_KEY") or "bench-" + secrets.token_hex(16),
        JWT_ACCESS_MINUTES="240",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="config.settings.local",
        PYTHONPATH=str(ROOT),
    )
    scratch = tempfile.mkdtemp(prefix="e2e-bench-")
    base_url = args.database_url
    db_url, db_name = "", ""
    if base_url.startswith(("postgres://", "postgresql://")):
        db_url, db_name = scratch_database(base_url)
        workers = args.workers
    else:
        db_url = f"sqlite:///{scratch}/bench.sqlite3"
        workers = 1  # one SQLite file: one server process
    env["DATABASE_URL"] = db_url
    server_proc = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        tenants = max(args.tenants, 1)
        done = subprocess.run(
            [sys.executable, "-c", USERS_SCRIPT.format(tenants=tenants)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"creating the benchmark's users failed:\n{done.stderr[-3000:]}")
        users = json.loads(done.stdout[done.stdout.index("USERS") + 5 :])
        by_tenant: dict[int, list[str]] = {}
        for user in users:
            by_tenant.setdefault(user["tenant"], []).append(user["token"])
        tenant_ids = sorted(by_tenant)
        if args.published and db_name:
            prefill_published(db_url, args.published)

        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
        argv += ["--lifespan", "on", "--workers", str(workers)]
        # The production WebSocket flags (make serve, docs/deployment.md): frames encoded once
        # per process (config/wsprotocol.py), no compression. BENCH_UVICORN_WS=websockets-sansio
        # measures uvicorn's own protocol (each socket encodes the frame again).
        ws = os.environ.get("BENCH_UVICORN_WS", "config.wsprotocol:FrameProtocol")
        argv += ["--ws", ws, "--ws-per-message-deflate", "false", "--ws-max-size", "10240"]
        server_proc = subprocess.Popen(argv, cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or server_proc.poll() is not None:
                raise SystemExit("uvicorn did not start")
            time.sleep(0.1)
        time.sleep(2.0)  # every worker up
        pids = children(server_proc.pid) if workers > 1 else [server_proc.pid]
        server = {"port": port, "workers": pids, "db_url": db_url, "db_name": db_name}
        mode = "NOTIFY, no publisher" if args.emitters_notify else "each with its publisher"
        before = args.published if db_name else 0
        published = f", {before} events published before (not vacuumed)" if before else ""
        print(
            f"end-to-end bench: uvicorn x{workers} on {'PostgreSQL' if db_name else 'SQLite'}, "
            f"Redis {args.redis_url}; {args.emitters} emitter processes "
            f"x {args.threads} threads ({mode}),"
            f" {args.clients} client processes, {args.duration:g} s per shape"
            f"{published}; "
            f"load {[round(x, 2) for x in os.getloadavg()]}",
            flush=True,
        )
        multi_plan = [
            [t, by_tenant[t][s % len(by_tenant[t])]]
            for t in tenant_ids
            for s in range(args.sockets_per_tenant)
        ]
        busy = tenant_ids[0]
        busy_plan = [
            [busy, by_tenant[busy][s % len(by_tenant[busy])]] for s in range(args.busy_sockets)
        ]
        shapes = {}
        wanted = {name.strip() for name in args.shapes.split(",")}
        if "multi" in wanted:
            shapes["multi_tenant"] = run_shape(
                "multi-tenant", multi_plan, tenant_ids, args.multi_rate, args, env, server
            )
        if "busy" in wanted:
            shapes["busy_tenant"] = run_shape(
                "busy tenant", busy_plan, [busy], args.busy_rate, args, env, server
            )
    finally:
        if server_proc is not None and server_proc.poll() is None:
            server_proc.terminate()
            try:
                server_proc.wait(20)
            except subprocess.TimeoutExpired:
                server_proc.kill()
        shutil.rmtree(scratch, ignore_errors=True)
        if db_name:
            with contextlib.suppress(Exception):
                drop_database(base_url, db_name)
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(args.redis_url)
            for key in client.scan_iter(f"{run_prefix}*"):
                client.delete(key)
            client.close()

    none = {
        "events_per_s": None,
        "p99_ms": None,
        "deliveries_per_s": None,
        "after_commit_p99_ms": 0.0,
        "lost": 0,
        "duplicates": 0,
    }
    m, b = shapes.get("multi_tenant", none), shapes.get("busy_tenant", none)
    summary = {
        "multi_tenant_events_per_s": m["events_per_s"],
        "multi_tenant_p99_ms": m["p99_ms"],
        "busy_tenant_events_per_s": b["events_per_s"],
        "busy_tenant_p99_ms": b["p99_ms"],
        "busy_tenant_deliveries_per_s": b["deliveries_per_s"],
        "request_after_commit_p99_ms": max(m["after_commit_p99_ms"], b["after_commit_p99_ms"]),
        "lost": m["lost"] + b["lost"],
        "duplicates": m["duplicates"] + b["duplicates"],
        "database": "postgresql" if db_name else "sqlite",
        "workers": workers,
        "emitters": args.emitters,
        "published_before": args.published if db_name else 0,
        "shapes": shapes,
    }
    print(json.dumps(summary, separators=(",", ":")), flush=True)
    return summary


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="role")
    client = sub.add_parser("client", help="(internal) hold sockets, record receipts")
    client.add_argument("--plan", required=True)
    client.add_argument("--url", required=True)
    client.add_argument("--out", required=True)
    emitter = sub.add_parser("emitter", help="(internal) commit events through broadcast()")
    emitter.add_argument("--rate", type=float, required=True)
    emitter.add_argument("--duration", type=float, required=True)
    emitter.add_argument("--start-at", type=float, required=True)
    emitter.add_argument("--offset", type=int, default=0)
    emitter.add_argument("--out", required=True)
    emitter.add_argument("--tenant-ids", type=int, nargs="+", required=True)
    emitter.add_argument("--notify", action="store_true")
    emitter.add_argument("--threads", type=int, default=4)
    emitter.add_argument("--emitters", type=int, default=1)
    emitter.add_argument("--trace", action="store_true")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of emitting per shape"
    )
    parser.add_argument("--multi-rate", type=float, default=1000.0, help="offered events/s")
    parser.add_argument("--busy-rate", type=float, default=300.0, help="offered events/s")
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--sockets-per-tenant", type=int, default=4)
    parser.add_argument("--busy-sockets", type=int, default=200)
    parser.add_argument("--emitters", type=int, default=4, help="emitting processes")
    parser.add_argument(
        "--threads", type=int, default=4, help="committing threads per emitter (request threads)"
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument(
        "--drain-idle",
        type=float,
        default=5.0,
        help="after emitting, stop waiting once no delivery arrived for this many seconds",
    )
    parser.add_argument(
        "--shapes", default="multi,busy", help="which shapes to run (multi, busy, or both)"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (PostgreSQL)")
    parser.add_argument(
        "--published",
        type=int,
        default=0,
        help="PostgreSQL: events published before the shapes and not yet vacuumed (a running "
        "platform's outbox between two vacuums; the table is analyzed, not vacuumed, for the run)",
    )
    parser.add_argument(
        "--emitters-notify",
        action="store_true",
        help="emitters run no publisher (as a shell): the servers' publishers are woken",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="time each step of the emitters' publisher rounds (wake, claim, send, settle)",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or "")
    parser.add_argument("--prefix", default=os.environ.get("CHANNELS_PREFIX") or "bench")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.role == "client":
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(client_main(arguments))
    elif arguments.role == "emitter":
        emitter_main(arguments)
    else:
        main(arguments)
