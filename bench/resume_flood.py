#!/usr/bin/env python
"""Resume-amplification figures (issue 12): what one socket's `resume` flood costs the server.

    python bench/resume_flood.py [--events 500] [--seconds 10]

In-process (the real ASGI application through Channels' test communicator, the channel layer
and database that settings configure: REDIS_URL / DATABASE_URL or the embedded defaults), on a
scratch test database: stores N events for a tenant, then

1. flood: a staff socket sends `resume` from 0 about 19 times a second (under the frame limit)
   for S seconds while a tenant admin's socket pings every 100 ms; prints the frames the server
   sent the attacker, the CPU time the process used, and the victim's ping p50/p99 beside a
   baseline measured first in the same run with no flood;
2. burst: 1,000 `resume` frames sent at once; prints whether and when 4429 came and the frames
   served before it.

Run it on two checkouts (before/after) to compare; figures are noisy on a shared 2-core machine.
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


async def run(args: argparse.Namespace) -> None:
    from channels.db import database_sync_to_async

    from notifications.events import relay
    from notifications.events.broadcast import broadcast
    from notifications.events.catalog import SystemNotification
    from tests.factories import TenantAdminFactory, TenantFactory, TenantStaffFactory
    from tests.notifications.wsutil import connect_user

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

    async def pings(comm, seconds: float) -> list[float]:
        rtts = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            await comm.send_json_to({"action": "ping"})
            while True:
                frame = await comm.receive_json_from(timeout=30)
                if frame["type"] == "pong":
                    break
            rtts.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.1)
        return rtts

    victim, _ = await connect_user(admin)
    baseline = await pings(victim, 3)

    attacker, _ = await connect_user(staff)
    sent = {"frames": 0, "resumed": 0, "errors": 0, "closed": None}

    async def read(comm) -> None:
        while True:
            try:
                message = await comm.receive_output(timeout=2)
            except TimeoutError:
                return
            if message["type"] == "websocket.close":
                sent["closed"] = message.get("code")
                return
            frame = json.loads(message["text"])
            sent["frames"] += 1
            sent["resumed"] += frame["type"] == "resumed"
            sent["errors"] += frame["type"] == "error"

    async def flood(comm, seconds: float) -> None:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end and sent["closed"] is None:
            n += 1
            last_id = n % 2 if args.vary else 0
            try:
                await comm.send_json_to({"action": "resume", "last_id": last_id})
            except BaseException:  # closed by the server
                return
            await asyncio.sleep(1 / 19)

    reader = asyncio.create_task(read(attacker))
    cpu0 = time.process_time()
    wall0 = time.monotonic()
    _, under_flood = await asyncio.gather(
        flood(attacker, args.seconds), pings(victim, args.seconds)
    )
    await reader
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    ratio = statistics.median(under_flood) / statistics.median(baseline)
    how = "alternating last_id 0/1" if args.vary else "from 0"
    print(f"events stored: {args.events}; flood: resume {how} at ~19/s for {args.seconds:.0f} s")
    print(
        f"  frames sent to the attacker: {sent['frames']:,} ({sent['resumed']} resumed, "
        f"{sent['errors']} errors, close {sent['closed']}); process CPU {cpu / wall:.0%}"
    )
    print(
        f"  victim ping p50/p99: baseline {statistics.median(baseline):.1f}/"
        f"{_p99(baseline):.1f} ms, under flood {statistics.median(under_flood):.1f}/"
        f"{_p99(under_flood):.1f} ms (ratio p50 {ratio:.1f}x)"
    )
    with contextlib.suppress(BaseException):
        await attacker.disconnect()

    burst, _ = await connect_user(staff)
    sent.update(frames=0, resumed=0, errors=0, closed=None)
    begin = time.monotonic()
    reading = asyncio.create_task(read(burst))
    for _ in range(1000):
        try:
            await burst.send_to(text_data='{"action":"resume","last_id":0}')
        except BaseException:  # the server closed the socket (4429): the rest is not sent
            break
    await reading
    print(
        f"burst: 1,000 resumes at once -> close {sent['closed']} after "
        f"{time.monotonic() - begin:.2f} s, {sent['frames']:,} frames served "
        f"({sent['resumed']} resumed)"
    )
    await victim.disconnect()


def _p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


if __name__ == "__main__":
    main()
