"""Many sockets' questions in one thread hop (notifications.realtime.batch.ThreadBatch)."""

from __future__ import annotations

import asyncio

from notifications.realtime.batch import ThreadBatch


async def test_questions_arriving_one_by_one_in_a_burst_share_thread_hops():
    """A burst whose handshakes come one at a time (each hop long done before the next
    handshake) still makes one hop per moment, not one per handshake; each gets its answer."""
    calls: list[list[int]] = []

    def double(args: list[int]) -> list[int]:
        calls.append(args)
        return [2 * a for a in args]

    batch = ThreadBatch(double)
    batch.window = 0.5
    loop = asyncio.get_running_loop()
    assert await batch.ask(0) == 0  # a quiet moment: at once
    started = loop.time()
    asks = []
    for n in range(1, 21):
        asks.append(asyncio.create_task(batch.ask(n)))
        await asyncio.sleep(0.01)
    assert await asyncio.gather(*asks) == [2 * n for n in range(1, 21)]
    moments = (loop.time() - started) / batch.window
    assert len(calls) <= 2 + moments, f"{len(calls)} hops for 21 questions"
    assert sorted(a for args in calls for a in args) == list(range(21))
