"""Many sockets' questions to the database in one thread hop: `ThreadBatch`.

At a burst of handshakes every socket used to make its own `database_sync_to_async` hop (to
authenticate, to find its resume point): a thread switch, a worker thread holding the GIL
against the event loop, a connection check, per socket (issue 16: about half of the
handshake's server CPU). A `ThreadBatch` runs the first question at once; the questions that
arrive while it is in the thread wait for the next run and go together. Every question is
answered by a run that started after it was asked, so the answer is as fresh as its own hop's.

In a burst the runs are at least `window` apart (5 ms): a hop shorter than the gap between two
handshakes (a quiet database, ~1,000 handshakes/s) otherwise batched nothing. A question in a
quiet moment still runs at once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async


class ThreadBatch:
    """One event loop's batch of calls of `many(args_list) -> answers_list` (sync, ORM).

    A run takes at most `max_size` questions (the rest wait for the next run): a storm of
    10,000 handshakes is answered in runs of 500, so no one call holds the database thread for
    long, and the first sockets are answered after their run's work, not after all 10,000's.
    """

    MAX_SIZE = 500
    window = 0.005  # seconds between the starts of two runs, at the least

    def __init__(
        self,
        many: Callable[[list[Any]], list[Any]],
        *,
        max_size: int = MAX_SIZE,
        in_thread: Callable[[Callable], Callable[..., Awaitable[Any]]] = database_sync_to_async,
    ) -> None:
        self.many = many
        self.max_size = max_size
        self.in_thread = in_thread  # how a run reaches its thread (default: the ORM's)
        self._started = -self.window  # loop time of the last run's start
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.running = False
        self._task: asyncio.Task | None = None

    async def ask(self, arg: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.waiting.append((arg, fut))
        if not self.running:
            self.running = True
            self._task = loop.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        batch: list[tuple[Any, asyncio.Future]] = []
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                wait = self._started + self.window - loop.time()
                if wait > 0:  # a burst: the questions of the next moment go with these
                    await asyncio.sleep(wait)
                self._started = loop.time()
                batch = self.waiting[: self.max_size]
                self.waiting = self.waiting[self.max_size :]
                try:
                    answers = await self.in_thread(self.many)([arg for arg, _ in batch])
                except Exception as exc:  # e.g. the database is away: every caller gets it
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    if len(answers) != len(batch):  # a bug in `many`: its callers hear of it
                        wrong = RuntimeError(f"{len(answers)} answers to {len(batch)} questions")
                        for _, fut in batch:
                            if not fut.done():
                                fut.set_exception(wrong)
                    else:
                        for (_, fut), answer in zip(batch, answers, strict=True):
                            if not fut.done():
                                fut.set_result(answer)
                batch = []
        finally:  # cancelled (the loop is closing): nobody waits forever
            self.running = False
            for _, fut in batch + self.waiting:
                if not fut.done():
                    fut.cancel()
            self.waiting = []


_batches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def thread_batch(many: Callable[[list[Any]], list[Any]], **options: Any) -> ThreadBatch:
    """The running event loop's batch of `many` (one per loop: tests run several loops);
    `options` (ThreadBatch's) apply when the batch is made."""
    loop = asyncio.get_running_loop()
    per_loop = _batches.get(loop)
    if per_loop is None:
        per_loop = _batches[loop] = {}
    found = per_loop.get(many)
    if found is None:
        found = per_loop[many] = ThreadBatch(many, **options)
    return found
