"""`manage.py expire_hotspot_users [--loop SECONDS]`: expire every hotspot user whose time is up."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection
from django.utils import timezone

from hotspot.services import expire_due_hotspot_users


class Command(BaseCommand):
    help = (
        "Expire every active hotspot user whose time has ended (through the service, so each "
        "expiry sends its event). With --loop SECONDS, repeat every SECONDS until interrupted."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--loop",
            type=float,
            metavar="SECONDS",
            help="Keep running, expiring due users every SECONDS seconds (Ctrl-C stops).",
        )
        # For tests and supervised one-offs: stop after N passes of the loop.
        parser.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)

    def handle(
        self, *args: Any, loop: float | None, iterations: int | None, **options: Any
    ) -> None:
        if loop is None:
            self.run_once()
            return
        if loop <= 0:
            raise CommandError("--loop needs a positive number of seconds, e.g. --loop 60.")
        if iterations is not None and iterations < 1:
            raise CommandError("--iterations needs a positive number.")
        self.stdout.write(f"Expiring due hotspot users every {loop:g}s; Ctrl-C stops.")
        try:
            run_loop(self.run_once, interval=loop, iterations=iterations)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def run_once(self) -> int:
        count = expire_due_hotspot_users()
        stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")
        self.stdout.write(f"[{stamp}] Expired {count} hotspot user(s).")
        return count


def run_loop(
    step: Callable[[], int],
    *,
    interval: float,
    iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call `step` every `interval` seconds (forever, or `iterations` times); total expired."""
    total = 0
    done = 0
    while iterations is None or done < iterations:
        if not connection.in_atomic_block:  # (tests run the loop inside a transaction)
            close_old_connections()  # a long-running loop must not keep a dead connection
        total += step()
        done += 1
        if iterations is None or done < iterations:
            sleep(interval)
    return total
