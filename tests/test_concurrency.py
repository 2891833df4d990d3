"""The race tests' thread runner: results in order, and no thread's crash passes silently."""

from __future__ import annotations

import threading

import pytest

from tests.concurrency import run_concurrently


def test_every_thread_runs_together_and_results_come_back_in_order():
    inside = threading.Barrier(4)  # passes only if all four are running at once

    def work(n: int) -> int:
        inside.wait(30)
        return n * n

    assert run_concurrently(work, 4) == [0, 1, 4, 9]


def test_an_error_in_one_thread_fails_the_caller():
    def work(n: int) -> int:
        if n == 2:
            raise LookupError("thread 2 crashed")
        return n

    with pytest.raises(LookupError, match="thread 2 crashed"):
        run_concurrently(work, 4)


def test_errors_in_several_threads_are_all_reported():
    def work(n: int) -> None:
        raise ValueError(f"thread {n}")

    with pytest.raises(ExceptionGroup) as caught:
        run_concurrently(work, 3)
    assert [str(exc) for exc in caught.value.exceptions] == ["thread 0", "thread 1", "thread 2"]


def test_a_thread_still_running_after_the_timeout_fails_the_caller():
    release = threading.Event()

    def work(n: int) -> None:
        release.wait(30)  # one thread: the barrier lets it through at once

    try:
        with pytest.raises(AssertionError, match=r"threads \[0\] of 1 still running"):
            run_concurrently(work, 1, timeout=0.2)
    finally:
        release.set()
