"""`run_concurrently`: the race tests' one way to start threads together and hear their errors.

A thread's exception does not reach the test by itself (pytest only warns of it), so a race
test whose thread crashed could pass on what the other threads did. Here every thread's
error fails the test, and so does a thread still running after the timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


def run_concurrently(fn: Callable[[int], T], n: int, *, timeout: float = 60) -> list[T]:
    """Run `fn(0)` … `fn(n - 1)` in n threads released together at a barrier; their results
    in that order.

    Each thread closes its database connections when done. An exception raised in a thread
    (a broken barrier included) is re-raised here (several: an ExceptionGroup); `timeout` is
    a generous guard against a hang, not a measure of speed.
    """
    barrier = threading.Barrier(n)
    results: list[T | None] = [None] * n
    errors: list[tuple[int, BaseException]] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            results[index] = fn(index)
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append((index, exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [i for i, thread in enumerate(threads) if thread.is_alive()]
    if stuck:
        raise AssertionError(f"threads {stuck} of {n} still running after {timeout} s")
    errors.sort(key=lambda pair: pair[0])
    if len(errors) == 1:
        raise errors[0][1]
    if errors:
        raise BaseExceptionGroup(f"{len(errors)} of {n} threads failed", [exc for _, exc in errors])
    return results  # type: ignore[return-value]  # every slot was filled
