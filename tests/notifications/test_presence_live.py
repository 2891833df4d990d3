"""Presence against real server processes: tabs across two daphnes on one Redis, a killed one.

The guarantees of docs/protocol.md ("Presence"): a person is online once however many tabs they
have on however many server processes; joins and leaves reach watchers on every process; and
the entries of a process that dies without closing its sockets (SIGKILL) lapse, so watchers on
the surviving processes get `member_removed` within the TTL plus one heartbeat.

The servers run with a short TTL (NOTIFICATIONS_PRESENCE_TTL) and a presence prefix of this
module's own, so nothing here meets another module's entries.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from websockets.asyncio.client import connect

from tests.factories import TenantAdminFactory
from tests.liveserver import (
    Daphne,
    jwt_for,
    nothing_arrives,
    recv_json,
    server_env,
)
from tests.notifications.wsutil import committed_db

pytestmark = [pytest.mark.live, committed_db]

TTL = 1.5  # seconds: the servers' NOTIFICATIONS_PRESENCE_TTL (heartbeat every TTL / 3)


def presence_env(redis_url: str | None) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    env = server_env(
        redis_url=redis_url, prefix=f"{settings.CHANNELS_PREFIX}-{run}" if redis_url else None
    )
    env["NOTIFICATIONS_PRESENCE_TTL"] = str(TTL)
    env["NOTIFICATIONS_PRESENCE_PREFIX"] = f"test-presence-live-{run}"
    return env


@pytest.fixture(scope="module")
def redis_env(redis_url, django_db_setup):
    return presence_env(redis_url)


@pytest.fixture(scope="module")
def redis_servers(redis_env):
    """Two daphne processes sharing one Redis (layer and presence store)."""
    servers = Daphne.start(redis_env, count=2)
    yield servers
    for server in servers:
        server.stop()


async def until(ws, match: Callable[[dict], bool], timeout: float = 5) -> dict:
    """The first frame that matches (others, e.g. the watcher's own join, are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv_json(ws, timeout)
            if match(frame):
                return frame


async def open_socket(server: Daphne, user) -> object:
    ws = await connect(f"{server.ws}?token={await jwt_for(user)}")
    welcome = await recv_json(ws)
    assert welcome["type"] == "welcome", welcome
    return ws


async def quiet(ws, wait: float = 0.3) -> list[dict]:
    """Every frame until `wait` seconds pass without one."""
    frames = []
    while True:
        try:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), wait)))
        except TimeoutError:
            return frames


async def settled(ws) -> None:
    """The server has handled everything sent on `ws` so far (its join included)."""
    await ws.send(json.dumps({"action": "ping"}))
    await until(ws, lambda f: f["type"] == "pong")


async def watch(ws, channel: str) -> dict:
    await ws.send(json.dumps({"action": "presence", "channel": channel}))
    return await until(ws, lambda f: f["type"] in ("presence", "presence_counts"))


def added(person) -> Callable[[dict], bool]:
    return lambda f: f["type"] == "member_added" and f["member"]["id"] == person.pk


def removed(person) -> Callable[[dict], bool]:
    return lambda f: f["type"] == "member_removed" and f["member"] == {"id": person.pk}


def count_of(tenant_id: int, online: int) -> Callable[[dict], bool]:
    return lambda f: f == {"type": "presence_count", "tenant": tenant_id, "online": online}


async def close_all(*sockets) -> None:
    for ws in sockets:
        await ws.close()


# -- real Redis: two server processes ---------------------------------------------------------


@pytest.mark.redis
async def test_tabs_on_two_servers_count_once_and_changes_reach_the_other_server(
    redis_servers, tenant_admin, staff, other_admin, system_admin
):
    server_a, server_b = redis_servers
    channel = f"tenant.{staff.tenant_id}"
    watcher = await open_socket(server_a, tenant_admin)
    counter = await open_socket(server_b, system_admin)
    outsider = await open_socket(server_b, other_admin)
    tabs = []
    try:
        await settled(outsider)  # its presence join follows its welcome
        first = await watch(watcher, channel)
        assert [m["id"] for m in first["members"]] == [tenant_admin.pk] and first["online"] == 1
        counts = await watch(counter, "system.admin")
        assert counts["counts"][str(staff.tenant_id)] == 1
        assert counts["counts"][str(other_admin.tenant_id)] == 1

        # three tabs of one person, on both servers: one member_added, on the other server too
        for server in (server_b, server_a, server_b):
            tabs.append(await open_socket(server, staff))
        for tab in tabs:
            await settled(tab)
        joined = await until(watcher, added(staff))
        assert joined["channel"] == channel and joined["online"] == 2
        assert joined["member"] == {
            "id": staff.pk,
            "username": staff.username,
            "name": staff.get_full_name() or staff.username,
            "role": "staff",
        }
        await until(counter, count_of(staff.tenant_id, 2))
        assert await nothing_arrives(watcher, 0.5), "more tabs are not more people"

        # a fresh look from the other server sees the same two people, not the other tenant's
        looker = await open_socket(server_b, tenant_admin)
        listing = await watch(looker, channel)
        assert sorted(m["id"] for m in listing["members"]) == sorted([tenant_admin.pk, staff.pk])
        assert listing["online"] == 2
        await looker.close()

        # closing two of the three tabs changes nothing; the last one is a leave, everywhere
        await tabs[0].close()
        await tabs[1].close()
        assert await nothing_arrives(watcher, 0.5)
        await tabs[2].close()
        left = await until(watcher, removed(staff))
        assert left["online"] == 1
        await until(counter, count_of(staff.tenant_id, 1))
    finally:
        await close_all(watcher, counter, outsider, *tabs)


@pytest.mark.redis
async def test_two_admins_on_two_servers_see_each_other_on_the_edit_page(
    redis_servers, tenant, tenant_admin, staff
):
    server_a, server_b = redis_servers
    colleague = await database_sync_to_async(TenantAdminFactory)(
        tenant=tenant, username="acme-admin-2", first_name="Second", last_name="Admin"
    )
    record = f"user.{staff.pk}"
    mine = await open_socket(server_a, tenant_admin)
    theirs = await open_socket(server_b, colleague)
    try:
        await mine.send(json.dumps({"action": "view", "record": record}))
        alone = await until(mine, lambda f: f["type"] == "viewers")
        assert alone == {"type": "viewers", "record": record, "viewers": []}
        await theirs.send(json.dumps({"action": "view", "record": record}))
        seen = await until(theirs, lambda f: f["type"] == "viewers")
        assert [v["username"] for v in seen["viewers"]] == [tenant_admin.username]
        both = await until(mine, lambda f: f["type"] == "viewers" and f["viewers"])
        assert [v["name"] for v in both["viewers"]] == ["Second Admin"]
        await theirs.close()
        # (a list may repeat: each change re-sends it) then the one without the colleague
        await until(mine, lambda f: f == {"type": "viewers", "record": record, "viewers": []})
    finally:
        await close_all(mine, theirs)


@pytest.mark.redis
async def test_entries_of_a_killed_server_expire_and_are_announced(
    redis_servers, redis_env, tenant_admin, staff, system_admin
):
    """SIGKILL: no disconnect, no leave; the surviving servers' sweeps remove the ghost."""
    server_a, server_b = redis_servers
    (doomed,) = Daphne.start(redis_env)
    channel = f"tenant.{staff.tenant_id}"
    watcher = await open_socket(server_a, tenant_admin)
    counter = await open_socket(server_b, system_admin)
    try:
        await watch(watcher, channel)
        await watch(counter, "system.admin")
        ghost = await open_socket(doomed, staff)
        await settled(ghost)
        assert (await until(watcher, added(staff)))["online"] == 2
        await until(counter, count_of(staff.tenant_id, 2))

        doomed.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.process.wait(5)
        left = await until(watcher, removed(staff), timeout=TTL * 4 + 5)
        elapsed = time.monotonic() - killed_at
        assert left["online"] == 1
        await until(counter, count_of(staff.tenant_id, 1), timeout=TTL + 2)
        # at most TTL (the last refresh was before the kill) + one heartbeat (TTL / 3) of the
        # survivors, plus slack for a loaded machine
        assert elapsed < TTL + TTL / 3 + 1.5, f"the ghost stayed {elapsed:.2f} s"
        print(f"killed server's entry removed after {elapsed:.2f} s (TTL {TTL} s)")

        looker = await open_socket(server_b, tenant_admin)
        listing = await watch(looker, channel)
        assert [m["id"] for m in listing["members"]] == [tenant_admin.pk]
        await looker.close()
    finally:
        await close_all(watcher, counter)
        doomed.stop()


# -- embedded default: the memory store in one server process ----------------------------------


@pytest.fixture
def memory_server(django_db_setup):
    """One daphne on the in-memory layer and presence store (only for this module's test)."""
    (server,) = Daphne.start(presence_env(None))
    yield server
    server.stop()


async def test_memory_store_counts_tabs_once_and_announces_joins_leaves_and_viewers(
    memory_server, tenant_admin, staff, other_admin
):
    channel = f"tenant.{staff.tenant_id}"
    watcher = await open_socket(memory_server, tenant_admin)
    outsider = await open_socket(memory_server, other_admin)
    tabs = []
    try:
        assert [m["id"] for m in (await watch(watcher, channel))["members"]] == [tenant_admin.pk]
        tabs = [await open_socket(memory_server, staff) for _ in range(2)]
        for tab in tabs:
            await settled(tab)
        assert (await until(watcher, added(staff)))["online"] == 2
        assert await nothing_arrives(watcher, 0.3)

        # the edit page: the staff member's record, opened by the admin, is nobody else's
        await watcher.send(json.dumps({"action": "view", "record": f"user.{staff.pk}"}))
        assert (await until(watcher, lambda f: f["type"] == "viewers"))["viewers"] == []
        # (its own arrival is a change too: the same list may come once more)
        assert all(
            f == {"type": "viewers", "record": f"user.{staff.pk}", "viewers": []}
            for f in await quiet(watcher)
        )
        await outsider.send(json.dumps({"action": "view", "record": f"user.{staff.pk}"}))
        refused = await until(outsider, lambda f: f["type"] == "error")
        assert refused["code"] == "forbidden"

        await tabs[0].close()
        assert await nothing_arrives(watcher, 0.3)
        await tabs[1].close()
        assert (await until(watcher, removed(staff)))["online"] == 1
    finally:
        await close_all(watcher, outsider, *tabs)
