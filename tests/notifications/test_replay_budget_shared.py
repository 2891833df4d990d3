"""The per-person replay budget is shared by every server process through Redis (issue 12).

Before, each process kept its own: a person with sockets on N workers had N budgets, so an
attacker multiplied their replay work by opening a socket on each worker.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.conf import settings
from websockets.asyncio.client import connect

from notifications.realtime import limits
from tests.liveserver import Daphne, jwt_for, recv_json, server_env
from tests.notifications.test_replay import emit, published
from tests.notifications.wsutil import committed_db

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


async def resume_answer(ws, last_id: int) -> tuple[list[int], dict]:
    """Resume; the replayed event ids and the closing frame (resumed, resync or error)."""
    await ws.send(f'{{"action":"resume","last_id":{last_id}}}')
    ids = []
    while True:
        frame = await recv_json(ws, timeout=30)
        if frame["type"] == "event":
            ids.append(frame["id"])
        elif frame["type"] in ("resumed", "resync", "error"):
            return ids, frame


@pytest.mark.live
@pytest.mark.redis
async def test_two_server_processes_on_one_redis_share_a_persons_replay_budget(
    redis_url, staff, tenant_admin, tenant
):
    env = server_env(redis_url=redis_url, prefix=f"{settings.CHANNELS_PREFIX}-{uuid.uuid4().hex}")
    env.update(NOTIFICATIONS_REPLAY_USER_FRAMES="10", NOTIFICATIONS_REPLAY_WINDOW_SECONDS="600")
    ids = [await emit(f"n{i}", tenant=tenant) for i in range(10)]
    await published(*ids)
    servers = await asyncio.to_thread(Daphne.start, env, 2)
    try:
        a, b = servers
        async with (
            connect(f"{a.ws}?token={await jwt_for(staff)}") as on_a,
            connect(f"{b.ws}?token={await jwt_for(staff)}") as on_b,
            connect(f"{b.ws}?token={await jwt_for(tenant_admin)}") as other_on_b,
        ):
            for ws in (on_a, on_b, other_on_b):
                assert (await recv_json(ws, timeout=30))["type"] == "welcome"
            replayed, end = await resume_answer(on_a, 0)
            assert (replayed, end["type"]) == (ids, "resumed")
            # The same person on the other process: the budget spent on A is spent.
            replayed, end = await resume_answer(on_b, 0)
            assert replayed == [] and end["code"] == "replay_limited", end
            assert end["retry_after"] > 0
            # Someone else on B has their own budget.
            replayed, end = await resume_answer(other_on_b, 0)
            assert (replayed, end["type"]) == (ids, "resumed")
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)


async def test_without_a_reachable_redis_the_budget_falls_back_to_the_process(settings, staff):
    """Redis down must not refuse every resume: each process counts for itself meanwhile."""
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    settings.NOTIFICATIONS_REPLAY_USER_FRAMES = 10
    limits.reset_user_budgets()
    try:
        first, second = limits.ReplayBudget(staff.pk), limits.ReplayBudget(staff.pk)
        assert await first.retry_after() == 0
        await first.charge(10)  # this process's budget of the person is spent
        assert await second.retry_after() > 0
    finally:
        limits._users.clear()
        limits._shared = None
