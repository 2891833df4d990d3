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
