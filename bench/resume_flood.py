#!/usr/bin/env python
"""Resume-amplification figures (issue 12): what one socket's `resume` flood costs the server.

    python bench/resume_flood.py [--events 500] [--seconds 10] [--server inprocess|daphne|uvicorn]

`--server inprocess` (the default): the real ASGI application through Channels' test
communicator in this process. `--server daphne` / `uvicorn`: a real server process
(tests/liveserver.py) on the same settings, reached over TCP with `websockets`; the CPU figure is
then the server process's. Either way on the channel layer and database that settings
configure (REDIS_URL / DATABASE_URL or the embedded defaults), on a scratch test database:
stores N events for a tenant, then

1. flood: a staff socket sends `resume` from 0 about 19 times a second (under the frame limit)
   for S seconds while a tenant admin's socket pings every 100 ms; prints the frames the server
   sent the attacker, the CPU time the process used, and the victim's ping p50/p99 beside a
   baseline measured first in the same run with no flood;
2. burst: 1,000 `resume` frames sent at once; prints whether and when 4429 came and the frames
   served before it.

Run it on two checkouts (before/after) to compare; figures are noisy on a shared 2-core machine.
Prints one JSON line of the figures at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--vary", action="store_true", help="alternate last_id 0 and 1 (defeats coalescing)"
    )
    parser.add_argument("--server", choices=["inprocess", "daphne", "uvicorn"], default="inprocess")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        asyncio.run(run(args))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


class _Comm:
    """A communicator socket (in process) behind the interface of `_Ws`."""

    def __init__(self, comm) -> None:
        self.comm = comm

    async def send(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def recv(self, timeout: float) -> tuple[str, object]:
        """("text", frame text) or ("close", code); TimeoutError when nothing came."""
        message = await self.comm.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return "close", message.get("code")
        return "text", message["text"]

    async def close(self) -> None:
        await self.comm.disconnect()


class _Ws:
    """A `websockets` client socket to a real server."""

    def __init__(self, ws) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def recv(self, timeout: float) -> tuple[str, object]:
        from websockets.exceptions import ConnectionClosed

        try:
            return "text", await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as closed:
            return "close", closed.rcvd.code if closed.rcvd else None

    async def close(self) -> None:
        await self.ws.close()


def _server_cpu_seconds(pid: int) -> float:
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace) -> None:
    from channels.db import database_sync_to_async

    from notifications.events import relay
    from notifications.events.broadcast import broadcast
    from notifications.events.catalog import SystemNotification
    from tests.factories import TenantAdminFactory, TenantFactory, TenantStaffFactory

    @database_sync_to_async
    def world():
        tenant = TenantFactory()
        staff = TenantStaffFactory(tenant=tenant)
        admin = TenantAdminFactory(tenant=tenant)
        for i in range(args.events):
            broadcast(SystemNotification.create(message=f"n{i}", tenant=tenant), exclude=None)
        return staff, admin

    staff, admin = await world()
    while await relay.publish_pending():
        pass

    server = None
    if args.server != "inprocess":
        import uuid

        from django.conf import settings

        from tests.liveserver import Daphne, Uvicorn, server_env

        prefix = f"{settings.CHANNELS_PREFIX}-bench-{uuid.uuid4().hex[:8]}"
        env = server_env(redis_url=settings.REDIS_URL or None, prefix=prefix)
        kind = Daphne if args.server == "daphne" else Uvicorn
        (server,) = await asyncio.to_thread(kind.start, env)

    async def open_socket(user):
        if server is None:
            from tests.notifications.wsutil import connect_user

            comm, _ = await connect_user(user)
            return _Comm(comm)
        from websockets.asyncio.client import connect

        from tests.liveserver import jwt_for

        ws = _Ws(await connect(f"{server.ws}?token={await jwt_for(user)}", max_size=None))
        kind, text = await ws.recv(30)
        assert kind == "text" and json.loads(text)["type"] == "welcome", text
        return ws

    def cpu_now() -> float:
        if server is None:
            return time.process_time()
        return _server_cpu_seconds(server.process.pid)

    try:
        await _flood_and_burst(args, open_socket, cpu_now, staff, admin)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


async def _flood_and_burst(args, open_socket, cpu_now, staff, admin) -> None:
    async def pings(sock, seconds: float) -> list[float]:
        rtts = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            await sock.send('{"action":"ping"}')
            while True:
                kind, text = await sock.recv(30)
                if kind == "text" and json.loads(text)["type"] == "pong":
                    break
            rtts.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.1)
        return rtts

    victim = await open_socket(admin)
    baseline = await pings(victim, 3)

    attacker = await open_socket(staff)
    sent = {"frames": 0, "resumed": 0, "errors": 0, "closed": None}

    async def read(sock) -> None:
        while True:
            try:
                kind, text = await sock.recv(2)
            except TimeoutError:
                return
            if kind == "close":
                sent["closed"] = text
                return
            frame = json.loads(text)
            sent["frames"] += 1
            sent["resumed"] += frame["type"] == "resumed"
            sent["errors"] += frame["type"] == "error"

    async def flood(sock, seconds: float) -> None:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end and sent["closed"] is None:
            n += 1
            last_id = n % 2 if args.vary else 0
            try:
                await sock.send(json.dumps({"action": "resume", "last_id": last_id}))
            except BaseException:  # closed by the server
                return
            await asyncio.sleep(1 / 19)

    reader = asyncio.create_task(read(attacker))
    cpu0 = cpu_now()
    wall0 = time.monotonic()
    _, under_flood = await asyncio.gather(
        flood(attacker, args.seconds), pings(victim, args.seconds)
    )
    await reader
    cpu = cpu_now() - cpu0
    wall = time.monotonic() - wall0
    ratio = statistics.median(under_flood) / statistics.median(baseline)
    how = "alternating last_id 0/1" if args.vary else "from 0"
    figures = {
        "server": args.server,
        "events": args.events,
        "flood": how,
        "flood_frames": sent["frames"],
        "flood_resumed": sent["resumed"],
        "flood_errors": sent["errors"],
        "flood_close": sent["closed"],
        "cpu_share": round(cpu / wall, 3),
        "ping_p50_ms_baseline": round(statistics.median(baseline), 2),
        "ping_p99_ms_baseline": round(_p99(baseline), 2),
        "ping_p50_ms_flood": round(statistics.median(under_flood), 2),
        "ping_p99_ms_flood": round(_p99(under_flood), 2),
        "ping_p50_ratio": round(ratio, 2),
    }
    print(
        f"server: {args.server}; events stored: {args.events}; flood: resume {how} at ~19/s "
        f"for {args.seconds:.0f} s"
    )
    print(
        f"  frames sent to the attacker: {sent['frames']:,} ({sent['resumed']} resumed, "
        f"{sent['errors']} errors, close {sent['closed']}); "
        f"{'server' if args.server != 'inprocess' else 'process'} CPU {cpu / wall:.0%}"
    )
    print(
        f"  victim ping p50/p99: baseline {statistics.median(baseline):.1f}/"
        f"{_p99(baseline):.1f} ms, under flood {statistics.median(under_flood):.1f}/"
        f"{_p99(under_flood):.1f} ms (ratio p50 {ratio:.1f}x)"
    )
    with contextlib.suppress(BaseException):
        await attacker.close()

    burst = await open_socket(staff)
    sent.update(frames=0, resumed=0, errors=0, closed=None)
    begin = time.monotonic()
    reading = asyncio.create_task(read(burst))
    for _ in range(1000):
        try:
            await burst.send('{"action":"resume","last_id":0}')
        except BaseException:  # the server closed the socket (4429): the rest is not sent
            break
    await reading
    took = time.monotonic() - begin
    print(
        f"burst: 1,000 resumes at once -> close {sent['closed']} after "
        f"{took:.2f} s, {sent['frames']:,} frames served "
        f"({sent['resumed']} resumed)"
    )
    figures.update(
        burst_close=sent["closed"],
        burst_seconds=round(took, 2),
        burst_frames=sent["frames"],
        burst_resumed=sent["resumed"],
    )
    with contextlib.suppress(BaseException):
        await victim.close()
    print(json.dumps(figures))


def _p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


if __name__ == "__main__":
    main()
