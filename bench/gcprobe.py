#!/usr/bin/env python
"""Run a server with every cyclic-GC pause recorded (`bench/fanout.py --gc-trace`), for study.

    BENCH_GC_TRACE=/tmp/gc.jsonl python bench/gcprobe.py uvicorn config.asgi:application ...

Installs a `gc.callbacks` probe, then runs the named module as ``python -m`` would. Each
collection appends one JSON line to ``$BENCH_GC_TRACE``: its start (``time.perf_counter()``,
CLOCK_MONOTONIC, the clock the benchmark's clients stamp events with), its wall time (``ms``:
what the event loop waited) and CPU (``cpu_ms``: what it cost, apart from a busy machine's
preemption), generation, objects collected and uncollectable and the counts before it. (Not
the frozen count: `gc.get_freeze_count()` walks the whole permanent generation, 1.3 million
objects at 10,000 sockets, ~20 ms a call: read per collection it inflated the run it measured.)
With ``BENCH_GC_SAVEALL=1`` the collector keeps what it found (`gc.DEBUG_SAVEALL`) and each line
also names the types of the collected objects (the top 12 with counts): where the cyclic garbage
comes from. Saved objects are dropped right after, so they stay unreachable and a later full
collection counts them again: read the young collections' lines.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import sys
import time
import types
from collections import Counter


def install(path: str, *, save_all: bool = False) -> None:
    """Append one JSON line per collection to `path` (line-buffered: survives a kill)."""
    out = open(path, "a", buffering=1)  # noqa: SIM115 (kept open for the process's life)
    clock, cpu = time.perf_counter, time.thread_time
    started = [0.0, (0, 0, 0), 0.0]
    if save_all:
        gc.set_debug(gc.DEBUG_SAVEALL)

    def probe(phase: str, info: dict) -> None:
        if phase == "start":
            started[1] = gc.get_count()
            started[2] = cpu()
            started[0] = clock()
            return
        ms = (clock() - started[0]) * 1000
        cpu_ms = (cpu() - started[2]) * 1000
        row = {
            "t": round(started[0], 6),
            "ms": round(ms, 3),  # wall time: what the event loop waited
            "cpu_ms": round(cpu_ms, 3),  # this thread's CPU: what the collection cost
            "gen": info["generation"],
            "collected": info["collected"],
            "uncollectable": info["uncollectable"],
            "counts": started[1],
            "pid": os.getpid(),
        }
        if save_all and gc.garbage:
            kinds = Counter(_kind(o) for o in gc.garbage)
            row["types"] = kinds.most_common(12)
            gc.garbage.clear()
        out.write(json.dumps(row, separators=(",", ":")) + "\n")

    gc.callbacks.append(probe)


def _kind(obj: object) -> str:
    """A collected object's type; for a function (a closure in a cycle) its own name."""
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__module__}.{obj.__qualname__}"
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def main() -> None:
    path = os.environ.get("BENCH_GC_TRACE")
    if path:
        install(path, save_all=os.environ.get("BENCH_GC_SAVEALL") == "1")
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # bench/ is not the server's import path
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
