"""Periodic work inside the server processes, each run exactly once across all of them.

Tasks are declared in one setting::

    PERIODIC_TASKS = {"name": {"task": "dotted.path.to.callable", "every": seconds}}

Every server process runs a `Runner` on its event loop (started by `PeriodicMiddleware` in
config/asgi.py: on ASGI lifespan startup under uvicorn, on the first connection under daphne),
so `make run` needs no extra process. Before a run, a process claims the task's lease row in
the database with one conditional UPDATE (or the first INSERT): the claim succeeds only if the
task is due (`next_run <= now`) and nobody holds it (`lease_until <= now`), and sets the next
due time. One row, one statement: SQLite and PostgreSQL both serialize it, so across any number
of processes sharing the database each due run happens once, and a run that outlasts its
interval is never started twice. A process that dies mid-run frees the task after LEASE_SECONDS.

The lease table is created on first use (`CREATE TABLE IF NOT EXISTS`), not by a migration: it
belongs to no app and holds nothing but timestamps. `PERIODIC_ENABLED=0` turns the runner off
(the test settings do, unless a test turns it on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    connection,
    transaction,
)
from django.utils.module_loading import import_string

logger = logging.getLogger("config.periodic")

LEASE_SECONDS = 300.0  # a run that takes longer is assumed dead and may be claimed again
TICK_SECONDS = 1.0
HOLDER = f"{socket.gethostname()}:{os.getpid()}"

_table_ready: set[str] = set()
_lock = threading.Lock()


def _table_key() -> str:
    return f"{connection.alias}:{connection.settings_dict.get('NAME')}"


def _ensure_table() -> None:
    if _table_key() in _table_ready:
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS periodic_lease ("
                "name VARCHAR(200) PRIMARY KEY, holder VARCHAR(200) NOT NULL, "
                "next_run DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION NOT NULL)"
            )
    except DatabaseError:  # another process created it at the same moment (PostgreSQL)
        pass
    _table_ready.add(_table_key())


def tasks() -> dict[str, dict[str, Any]]:
    return dict(getattr(settings, "PERIODIC_TASKS", {}) or {})


def claim(name: str, every: float, *, holder: str = HOLDER, now: float | None = None) -> bool:
    """Take the lease of `name` if it is due and free; True: this process runs it now."""
    now = time.time() if now is None else now
    _ensure_table()
    try:
        return _claim(name, every, holder, now)
    except (OperationalError, ProgrammingError):  # the table went away (a test's rollback)
        _table_ready.discard(_table_key())
        _ensure_table()
        return _claim(name, every, holder, now)


def _claim(name: str, every: float, holder: str, now: float) -> bool:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE periodic_lease SET holder = %s, next_run = %s, lease_until = %s "
            "WHERE name = %s AND next_run <= %s AND lease_until <= %s",
            [holder, now + every, now + LEASE_SECONDS, name, now, now],
        )
        if cursor.rowcount == 1:
            return True
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO periodic_lease (name, holder, next_run, lease_until) "
                "VALUES (%s, %s, %s, %s)",
                [name, holder, now + every, now + LEASE_SECONDS],
            )
        return True
    except IntegrityError:  # the row exists: someone else holds it, or it is not due
        return False


def release(name: str, *, holder: str = HOLDER) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE periodic_lease SET lease_until = 0 WHERE name = %s AND holder = %s",
            [name, holder],
        )


def run_due(*, holder: str = HOLDER) -> list[str]:
    """Run every declared task that is due and whose lease this process gets; their names."""
    ran = []
    for name, spec in tasks().items():
        every = float(spec["every"])
        if not claim(name, every, holder=holder):
            continue
        started = time.monotonic()
        try:
            import_string(spec["task"])()
        except Exception:  # a failing task must not stop the runner or the other tasks
            logger.exception("periodic task %s failed", name)
        finally:
            release(name, holder=holder)
        ran.append(name)
        logger.debug("periodic task %s ran in %.3fs", name, time.monotonic() - started)
    return ran


class Runner:
    """This process's loop: every TICK_SECONDS, run the due tasks in a worker thread."""

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return (
            self.task is not None
            and not self.task.done()
            and self.loop is not None
            and not self.loop.is_closed()
        )

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self._forever(), name="periodic-runner")

    async def _forever(self) -> None:
        # Not the thread that runs sync views: a slow task must not hold up requests.
        step = database_sync_to_async(run_due, thread_sensitive=False)
        while True:
            try:
                await step()
            except Exception:  # the database is down, say: try again next tick
                logger.exception("periodic runner tick failed")
            await asyncio.sleep(TICK_SECONDS)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        self.task = None


_runner: Runner | None = None


def ensure_started() -> Runner | None:
    """Start this process's runner on the running loop once (PERIODIC_ENABLED permitting)."""
    global _runner
    if not getattr(settings, "PERIODIC_ENABLED", True) or not tasks():
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    with _lock:
        if _runner is not None and _runner.running:
            return _runner
        _runner = Runner()
        _runner.start()
        return _runner


async def stop() -> None:
    global _runner
    with _lock:
        runner, _runner = _runner, None
    if runner is not None:
        await runner.stop()


async def run_for(seconds: float) -> None:
    """Run this process's runner for `seconds` (tests, and `manage.py shell` experiments)."""
    ensure_started()
    await asyncio.sleep(seconds)
    await stop()


class PeriodicMiddleware:
    """ASGI wrapper: starts the runner on lifespan startup and on every connection.

    It passes the lifespan protocol on to the app it wraps (the publisher's middleware answers
    it), only watching for startup and shutdown.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":

            async def watched() -> dict:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    ensure_started()
                elif message["type"] == "lifespan.shutdown":
                    await stop()
                return message

            await self.app(scope, watched, send)
            return
        ensure_started()
        await self.app(scope, receive, send)
