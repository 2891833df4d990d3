"""Faults on real servers (issue 12): nothing committed is lost, memory stays flat under churn.

- `kill -9` of a server process mid-burst: its clients reconnect (half to the surviving
  server, half to the killed one restarted on its port) and `resume` from the last event they
  got; every committed event arrives, none twice-missing.
- PostgreSQL lost mid-burst: the servers reach PostgreSQL through a `TcpProxy` that is cut
  (open connections reset, new ones refused) for a few seconds while events keep being
  committed (the producer reaches PostgreSQL directly; the shared server is never stopped);
  every event committed before, during and after the cut arrives, and fresh sockets replay them
  all once the database is back.
- Connection churn soak: a few hundred sockets connect, resume, read and close over and over for
  SOAK_SECONDS (600 in CI, 60 otherwise); the server's RSS (VmRSS) of the second half must not
  exceed the first half's beyond a tolerance; the figures are printed.

The events are committed by another OS process without a channel layer of its own (as
`manage.py shell` or a cron job would), so the servers' outbox publishers send them: the killed
server dies holding leases on events it claimed, which the survivor publishes once they lapse.
All PostgreSQL: they run in the PostgreSQL pass (DATABASE_URL), the soak only there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.conftest import IN_CI, require_server
from tests.liveserver import Daphne, TcpProxy, Uvicorn, jwt_for, run_shell, server_env
from tests.notifications.wsutil import committed_db

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.postgres, committed_db]

BURST = 200


def fault_env(redis_url: str, database_url: str | None = None) -> dict[str, str]:
    """Servers on the real Redis under a prefix of this test; short leases, no replay budget."""
    env = server_env(redis_url=redis_url, prefix=f"{settings.CHANNELS_PREFIX}-{uuid.uuid4().hex}")
    env.update(
        NOTIFICATIONS_LEASE_SECONDS="2",
        NOTIFICATIONS_REPLAY_USER_FRAMES="1000000000",
        NOTIFICATIONS_REPLAY_SOCKET_FRAMES="1000000000",
        NOTIFICATIONS_PRESENCE_TTL="5",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


PRODUCER = """
import json, sys, time
from django.db import connection
from notifications.events.broadcast import broadcast
from notifications.events.catalog import SystemNotification
from tenants.models import Tenant
tenant = Tenant.objects.get(pk={tenant})
ids = []
for n in range({count}):
    event = SystemNotification.create(message=f"burst {{n}}", tenant=tenant)
    ids.append((broadcast(event, exclude=None).pk, time.time()))
    time.sleep({pause})
print("IDS=" + json.dumps(ids))
"""


def produce(tenant_id: int, count: int = BURST, pause: float = 0.05) -> list[tuple[int, float]]:
    """Commit `count` events of the tenant from another OS process (no layer: the servers'
    publishers send them); (id, wall-clock time committed) in commit order."""
    env = server_env(redis_url=None)
    out = run_shell(env, PRODUCER.format(tenant=tenant_id, count=count, pause=pause), timeout=300)
    line = next(line for line in out.splitlines() if line.startswith("IDS="))
    return json.loads(line[4:])


class Follower:
    """A client like notifications.js: follows the stream, on a drop reconnects (to wherever
    `target()` says now) and resumes from the last event id it received."""

    def __init__(self, token: str, target: Callable[[], str]) -> None:
        self.token = token
        self.target = target
        self.ids: list[int] = []
        self.last = 0
        self.connections = 0
        self.drops = 0
        self.stopped = False

    async def run(self) -> None:
        while not self.stopped:
            try:
                async with connect(f"{self.target()}?token={self.token}", open_timeout=10) as ws:
                    self.connections += 1
                    await ws.send(json.dumps({"action": "resume", "last_id": self.last}))
                    async for text in ws:
                        frame = json.loads(text)
                        if frame["type"] == "event":
                            self.ids.append(frame["id"])
                            self.last = frame["id"]
                        if self.stopped:
                            return
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            self.drops += 1
            await asyncio.sleep(0.2)

    def missing(self, ids: list[int]) -> list[int]:
        return sorted(set(ids) - set(self.ids))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def all_arrive(followers: list[Follower], ids: list[int], timeout: float = 90) -> None:
    try:
        await until(lambda: not any(f.missing(ids) for f in followers), timeout, "every event")
    except AssertionError:
        gaps = {n: f.missing(ids)[:10] for n, f in enumerate(followers) if f.missing(ids)}
        raise AssertionError(f"events missing (follower: first ids): {gaps}") from None


async def replay_from_zero(ws_url: str, token: str) -> list[int]:
    async with connect(f"{ws_url}?token={token}", open_timeout=10) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "welcome"
        await ws.send('{"action":"resume","last_id":0}')
        ids = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] == "event":
                ids.append(frame["id"])
            elif frame["type"] in ("resumed", "resync", "error"):
                assert frame["type"] == "resumed", frame
                return ids


async def stop_all(followers: list[Follower], tasks: list[asyncio.Task]) -> None:
    for follower in followers:
        follower.stopped = True
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@pytest.mark.timeout(300)
@pytest.mark.parametrize("killed", ["daphne", "uvicorn"])
async def test_kill_9_of_a_server_mid_burst_loses_no_event(killed, redis_url, staff):
    env = fault_env(redis_url)
    kinds = {"daphne": Daphne, "uvicorn": Uvicorn}
    victim_class = kinds[killed]
    survivor_class = kinds["uvicorn" if killed == "daphne" else "daphne"]
    victim, survivor = victim_class(env), survivor_class(env)
    servers = [victim, survivor]
    try:
        for server in servers:
            await asyncio.to_thread(server.wait_ready)
        token = await jwt_for(staff)
        where = {"victim": victim.ws}
        followers = [Follower(token, lambda: where["victim"]) for _ in range(4)]
        followers += [Follower(token, lambda: survivor.ws) for _ in range(2)]
        after_kill = [lambda: survivor.ws, lambda: where["victim"]]
        tasks = [asyncio.create_task(f.run()) for f in followers]
        producer = asyncio.create_task(asyncio.to_thread(produce, staff.tenant_id))
        # Mid-burst: every follower has some of the events, and more are still to come.
        await until(lambda: all(len(f.ids) >= 20 for f in followers), 120, "the burst to flow")
        killed_at = time.time()
        os.kill(victim.process.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.process.wait, 10)
        for n, follower in enumerate(followers[:4]):
            follower.target = after_kill[n % 2]  # half to the survivor, half to the restarted
        restarted = victim_class(env, port=victim.port)
        servers.append(restarted)
        await asyncio.to_thread(restarted.wait_ready)
        committed = await producer
        ids = [pk for pk, _ in committed]
        assert sum(at > killed_at for _, at in committed) >= 20, "the kill was not mid-burst"
        await all_arrive(followers, ids)
        assert all(f.drops >= 1 for f in followers[:4]), "the kill dropped no socket"
        await stop_all(followers, tasks)
        # Every event is stored once and replays in full, in commit order, from either server.
        for ws_url in (survivor.ws, restarted.ws):
            replayed = await replay_from_zero(ws_url, token)
            assert [pk for pk in replayed if pk in set(ids)] == ids
        for server in (survivor, restarted):
            assert "Traceback" not in server.output(), server.output()[-3000:]
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)


@pytest.mark.timeout(300)
async def test_postgresql_lost_mid_burst_loses_no_event(redis_url, staff):
    db = connection.settings_dict
    host, port = db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)
    require_server(f"postgres://{host}:{port}", 5432, "PostgreSQL")
    proxy = TcpProxy((host, port))
    proxy.start()
    user = db.get("USER") or "postgres"
    env = fault_env(redis_url, f"postgres://{user}@127.0.0.1:{proxy.port}/{db['NAME']}")
    servers = [Daphne(env), Uvicorn(env)]
    try:
        for server in servers:
            await asyncio.to_thread(server.wait_ready)
        token = await jwt_for(staff)
        followers = [Follower(token, lambda s=s: s.ws) for s in servers for _ in range(3)]
        tasks = [asyncio.create_task(f.run()) for f in followers]
        producer = asyncio.create_task(asyncio.to_thread(produce, staff.tenant_id))
        await until(lambda: all(len(f.ids) >= 20 for f in followers), 120, "the burst to flow")
        cut_at = time.time()
        proxy.stop()  # the servers' connections reset, new ones refused
        await asyncio.sleep(4)  # events keep being committed meanwhile (directly)
        restored_at = time.time()
        proxy.start()
        committed = await producer
        ids = [pk for pk, _ in committed]
        during = [pk for pk, at in committed if cut_at < at < restored_at]
        after = [pk for pk, at in committed if at > restored_at]
        assert len(during) >= 20 and after, "the cut was not mid-burst"
        await all_arrive(followers, ids)
        await stop_all(followers, tasks)
        # Each server replays all of them, in commit order, from the database it lost.
        for server in servers:
            replayed = await replay_from_zero(server.ws, token)
            assert [pk for pk in replayed if pk in set(ids)] == ids
    finally:
        proxy.stop()
        for server in servers:
            await asyncio.to_thread(server.stop)


# -- soak -----------------------------------------------------------------------------------------

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS") or (600 if IN_CI else 60))
SOAK_SOCKETS = int(os.environ.get("SOAK_SOCKETS", "300"))
SOAK_IN_FLIGHT = int(os.environ.get("SOAK_IN_FLIGHT", "16"))
#: RSS the second half may add over the first: 10 % or 16 MiB, whichever is more (allocator
#: fragmentation and a loaded machine's burstier scheduling move it by a few MiB).
SOAK_TOLERANCE = (0.10, 16 * 1024)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.timeout(int(SOAK_SECONDS) + 300)
async def test_connection_churn_soak_leaves_the_server_memory_flat(redis_url, staff, tenant):
    """Connect, resume, read, close at SOAK_SOCKETS sockets for SOAK_SECONDS on uvicorn."""
    env = fault_env(redis_url)
    await asyncio.to_thread(produce, staff.tenant_id, 20, 0.0)
    (server,) = await asyncio.to_thread(Uvicorn.start, env)
    token = await jwt_for(staff)
    stats = {"cycles": 0, "errors": 0, "events": 0}
    samples: list[tuple[float, int]] = []
    begin = time.monotonic()
    end = begin + SOAK_SECONDS

    # At most SOAK_IN_FLIGHT handshakes+replays at once: the server works through them instead
    # of queueing work for clients that have timed out (a backlog is not a leak); every socket
    # then stays open a moment, so a few hundred are open at any time.
    in_flight = asyncio.Semaphore(SOAK_IN_FLIGHT)

    async def churn(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < end:
            try:
                async with contextlib.AsyncExitStack() as stack:
                    async with in_flight:
                        ws = await stack.enter_async_context(
                            connect(f"{server.ws}?token={token}", open_timeout=60)
                        )
                        welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
                        assert welcome["type"] == "welcome"
                        await ws.send('{"action":"resume","last_id":0}')
                        while True:
                            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                            stats["events"] += frame["type"] == "event"
                            if frame["type"] in ("resumed", "resync", "error"):
                                break
                    await asyncio.sleep(rng.uniform(0, 2))  # open, idle, like a page
                stats["cycles"] += 1
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                stats["errors"] += 1
                await asyncio.sleep(0.5)

    async def sample() -> None:
        while time.monotonic() < end:
            samples.append((time.monotonic() - begin, rss_kib(server.process.pid)))
            await asyncio.sleep(1)

    try:
        await asyncio.gather(sample(), *(churn(n) for n in range(SOAK_SOCKETS)))
        log = server.output()
    finally:
        await asyncio.to_thread(server.stop)
    half = SOAK_SECONDS / 2
    # The first fifth is warm-up (imports, caches, the allocator's arenas at 300 sockets).
    first = [kib for t, kib in samples if SOAK_SECONDS * 0.2 <= t < half]
    second = [kib for t, kib in samples if t >= half]
    figures = {
        "seconds": SOAK_SECONDS,
        "sockets": SOAK_SOCKETS,
        "cycles": stats["cycles"],
        "cycles_per_s": round(stats["cycles"] / SOAK_SECONDS, 1),
        "errors": stats["errors"],
        "rss_start_mib": round(samples[0][1] / 1024, 1),
        "rss_first_half_median_mib": round(statistics.median(first) / 1024, 1),
        "rss_second_half_median_mib": round(statistics.median(second) / 1024, 1),
        "rss_second_half_max_mib": round(max(second) / 1024, 1),
        "rss_curve_mib": [round(kib / 1024) for _, kib in samples[:: max(1, len(samples) // 12)]],
    }
    print("soak " + json.dumps(figures), file=sys.stderr)
    assert stats["cycles"] >= SOAK_SOCKETS, figures
    assert stats["errors"] <= stats["cycles"] * 0.01, figures
    assert "Traceback" not in log, log[-3000:]
    ratio, floor = SOAK_TOLERANCE
    allowed = max(statistics.median(first) * ratio, floor)
    assert statistics.median(second) - statistics.median(first) <= allowed, figures
