"""notifications/realtime/batch.py: concurrent questions share a thread hop, in bounded runs."""

from __future__ import annotations

import asyncio

from notifications.realtime.batch import ThreadBatch


async def test_a_storm_of_questions_is_answered_in_runs_of_at_most_max_size():
    runs: list[int] = []

    def doubled(args: list[int]) -> list[int]:
        runs.append(len(args))
        return [2 * a for a in args]

    batch = ThreadBatch(doubled)
    answers = await asyncio.gather(*(batch.ask(i) for i in range(1201)))
    assert answers == [2 * i for i in range(1201)]  # each question gets its own answer
    assert max(runs) <= ThreadBatch.MAX_SIZE == 500  # one hop does bounded work
    assert sum(runs) == 1201
    assert len(runs) <= 4  # and the storm still shares hops: 1 + 500 + 500 + 200


async def test_a_failed_run_fails_only_its_own_questions():
    calls = 0

    def first_run_fails(args: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database away")
        return list(args)

    batch = ThreadBatch(first_run_fails, max_size=2)
    results = await asyncio.gather(*(batch.ask(i) for i in range(4)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]  # the first run's two
    assert results[2:] == [2, 3]  # the next run is answered


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


async def test_a_run_with_the_wrong_number_of_answers_fails_its_callers_not_cancels_them():
    batch = ThreadBatch(lambda args: args[:-1])  # a bug: one answer short
    results = await asyncio.gather(*(batch.ask(i) for i in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError] * 3  # an error, not CancelledError
    assert "2 answers to 3 questions" in str(results[0])
