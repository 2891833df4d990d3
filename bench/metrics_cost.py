"""Per-frame cost of counting frames sent: the tally `Metered.send` uses vs a multiprocess counter.

    .venv/bin/python bench/metrics_cost.py [--frames 200000] [--rounds 5]

A consumer's `send` is timed on a no-op transport (what is left is the bookkeeping): without
any metric (the baseline), with `notifications.realtime.metering.Metered` (a process-local tally,
flushed by the sampler), and with a multiprocess `Counter.inc()` per frame (what a plain counter
costs under PROMETHEUS_MULTIPROC_DIR: a locked write to an mmap'ed file). Prints one JSON line;
figures in bench/RESULTS.md, section 8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-cost-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from config import metrics  # noqa: E402
from notifications.realtime.metering import Metered  # noqa: E402


class Transport:
    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        return None


class Bare(Transport):
    pass


class Tallied(Metered, Transport):
    metrics_endpoint = "notifications"

    def __init__(self) -> None:
        self.meter = metrics.SocketMeter(self.metrics_endpoint)


class Counted(Transport):
    def __init__(self) -> None:
        self.sent = metrics.FRAMES_SENT.labels("notifications")

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        self.sent.inc()


async def per_frame_ns(consumer: Transport, frames: int) -> float:
    send = consumer.send
    started = time.perf_counter_ns()
    for _ in range(frames):
        await send(text_data="{}")
    return (time.perf_counter_ns() - started) / frames


async def main(frames: int, rounds: int) -> dict:
    kinds = {"bare": Bare(), "tally": Tallied(), "multiprocess_counter": Counted()}
    runs: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(rounds):  # interleaved, so load drifts hit every kind
        for name, consumer in kinds.items():
            runs[name].append(await per_frame_ns(consumer, frames))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    base = medians["bare"]
    metrics.sample()
    return {
        "frames": frames,
        "rounds": rounds,
        "ns_per_frame": {name: round(v, 1) for name, v in medians.items()},
        "added_ns_per_frame": {
            name: round(v - base, 1) for name, v in medians.items() if name != "bare"
        },
        "ratio_to_bare": {name: round(v / base, 2) for name, v in medians.items()},
        "load_1min": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.frames, args.rounds))))
