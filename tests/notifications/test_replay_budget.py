"""Resume amplification (issue 12): frames counted on arrival, resumes coalesced, replay budgeted.

Before: one socket sending `resume` from 0 ~19 times a second made the server replay 89k frames
in 15 s, and 1,000 resumes sent at once never tripped 4429 (the limit was checked as frames were
handled, each resume taking long enough to refill the bucket).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from notifications.realtime.limits import reset_user_budgets
from tests.notifications.test_replay import emit, event_ids, published, resume
from tests.notifications.wsutil import committed_db, connect_user, drain

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


@pytest.fixture(autouse=True)
def _fresh_budgets():
    reset_user_budgets()
    yield
    reset_user_budgets()


async def stored(staff, count: int) -> list[int]:
    ids = [await emit(f"n{i}", tenant=staff.tenant) for i in range(count)]
    await published(*ids)
    return ids


async def frames_until_close(comm, timeout: float = 30) -> tuple[list[dict], dict]:
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            message = await comm.receive_output(timeout)
            if message["type"] == "websocket.close":
                return frames, message
            frames.append(json.loads(message["text"]))


async def test_a_thousand_resumes_sent_at_once_trip_4429_before_they_are_served(staff):
    await stored(staff, 50)
    comm, _ = await connect_user(staff)
    for _ in range(1000):
        await comm.send_to(text_data='{"action":"resume","last_id":0}')
    frames, close = await frames_until_close(comm)
    assert close["code"] == 4429
    # Counted on arrival: closed after the burst (40) arrived, with at most the first replay
    # (and one coalesced behind it) served; handled one by one, 40+ replays were answered.
    assert sum(f["type"] == "resumed" for f in frames) <= 2
    assert sum(f["type"] == "event" for f in frames) <= 2 * 50


async def test_repeated_resumes_are_coalesced_into_one_replay(staff):
    ids = await stored(staff, 20)
    comm, _ = await connect_user(staff)
    for _ in range(10):  # under the frame limit
        await comm.send_json_to({"action": "resume", "last_id": 0})
    await asyncio.sleep(0)  # let them all arrive
    frames = await drain(comm, 1.5)
    # one replay; the nine after it, identical to the one answered (or coalesced while it ran),
    # get `resumed` alone: its events came live since
    answers = [f["type"] for f in frames if f["type"] != "event"]
    assert answers and set(answers) == {"resumed"} and len(answers) <= 10
    assert event_ids(frames) == ids  # once each, oldest first
    await comm.disconnect()


async def test_the_socket_replay_budget_refuses_with_retry_after(staff, settings):
    settings.NOTIFICATIONS_REPLAY_SOCKET_FRAMES = 15
    ids = await stored(staff, 10)
    comm, _ = await connect_user(staff)
    first = await resume(comm, 0)
    assert event_ids(first) == ids
    second = await resume(comm, ids[0])  # 9 more frames than the 5 left: served (into debt)
    assert event_ids(second) == ids[1:]
    third = await resume(comm, ids[1])
    [error] = [f for f in third if f["type"] == "error"]
    assert error["code"] == "replay_limited" and error["retry_after"] > 0
    assert not event_ids(third)
    await comm.disconnect()


async def test_the_person_budget_is_shared_by_their_sockets(staff, settings):
    settings.NOTIFICATIONS_REPLAY_USER_FRAMES = 10
    ids = await stored(staff, 10)
    one, _ = await connect_user(staff)
    assert event_ids(await resume(one, 0)) == ids
    another, _ = await connect_user(staff)  # a fresh socket, the same person
    refused = await resume(another, 0)
    assert [f["code"] for f in refused if f["type"] == "error"] == ["replay_limited"]
    for comm in (one, another):
        await comm.disconnect()
