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
