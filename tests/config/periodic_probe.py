"""A periodic task for tests: appends "<pid> <start> <end>" to $PERIODIC_PROBE_FILE."""

import os
import time


def record() -> None:
    start = time.time()
    time.sleep(0.3)  # long enough that two overlapping runs would show
    with open(os.environ["PERIODIC_PROBE_FILE"], "a") as f:
        f.write(f"{os.getpid()} {start} {time.time()}\n")


def explode() -> None:
    raise RuntimeError("this task always fails")


def stall() -> None:
    """Blocks while $PERIODIC_STALL_FILE exists (at most 120 s): a runner stuck in one tick."""
    path = os.environ["PERIODIC_STALL_FILE"]
    deadline = time.monotonic() + 120
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)
