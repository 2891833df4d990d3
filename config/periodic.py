"""Periodic work inside the server processes, each run exactly once across all of them.

Tasks are declared in one setting::

    PERIODIC_TASKS = {"name": {"task": "dotted.path.to.callable", "every": seconds}}

Every server process runs a `Runner` on its event loop (started by `BackgroundMiddleware`,
config/background.py: on ASGI lifespan startup under uvicorn, on the first connection under daphne),
so `make run` needs no extra process. Each tick reads the lease rows once (one SELECT: a
quiet tick writes nothing). Before a run, a process claims the task's lease row in
the database with one conditional UPDATE (or the first INSERT): the claim succeeds only if the
task is due (`next_run <= now`) and nobody holds it (`lease_until <= now`), and sets the next
due time. One row, one statement: SQLite and PostgreSQL both serialize it, so across any number
of processes sharing the database each due run happens once, and a run that outlasts its
interval is never started twice. A process that dies mid-run frees the task after LEASE_SECONDS.

The lease rows are `PeriodicLease` (config/models.py, table `periodic_lease`, made by `migrate`);
a claim is one conditional UPDATE (then, for a task's first claim, an INSERT … ON CONFLICT DO
NOTHING), exactly as above.
`PERIODIC_ENABLED=0` turns the runner off (the test settings do, unless a test turns it on).

`kick(name)` asks for a run now, after a commit that made work due (an email queued): the
process's runner takes it on its next tick; a process without a runner (a shell, a command,
the tests) runs it in a daemon thread of its own, under the same lease, for as long as the
task reports work pending (a task may return the seconds until its next item is due), and
lets it finish what is due before the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils.module_loading import import_string

from config.models import PeriodicLease

logger = logging.getLogger("config.periodic")

LEASE_SECONDS = 300.0  # a run that takes longer is assumed dead and may be claimed again
TICK_SECONDS = 1.0
_ANY_TIME = 1e300  # a kicked claim: due whatever next_run says
HOLDER = f"{socket.gethostname()}:{os.getpid()}"

TABLE = PeriodicLease._meta.db_table  # "periodic_lease"
_lock = threading.Lock()


def tasks() -> dict[str, dict[str, Any]]:
    return dict(getattr(settings, "PERIODIC_TASKS", {}) or {})


def claim(
    name: str,
    every: float,
    *,
    holder: str = HOLDER,
    now: float | None = None,
    due: bool = False,
) -> bool:
    """Take the lease of `name` if it is due and free; True: this process runs it now.

    `due=True` (a kick): free is enough, whenever the next run was planned."""
    now = time.time() if now is None else now
    # One conditional UPDATE: the row is due (or kicked) and free, or nothing changes.
    taken = PeriodicLease.objects.filter(
        name=name, next_run__lte=_ANY_TIME if due else now, lease_until__lte=now
    ).update(holder=holder, next_run=now + every, lease_until=now + LEASE_SECONDS)
    if taken == 1:
        return True
    # The first claim ever; a row that exists (someone else holds it, or it is not due) is
    # left alone without an error (SQLite 3.24+ and PostgreSQL both know ON CONFLICT), so the
    # database's log is not a duplicate-key error per task per tick. (The ORM's
    # ignore_conflicts is INSERT OR IGNORE on SQLite and reports no row count.)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (name, holder, next_run, lease_until) "  # noqa: S608 (a constant)
            "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
            [name, holder, now + every, now + LEASE_SECONDS],
        )
        return cursor.rowcount == 1


def release(name: str, *, holder: str = HOLDER) -> None:
    PeriodicLease.objects.filter(name=name, holder=holder).update(lease_until=0)


def claimable(names: list[str], *, now: float | None = None) -> list[str]:
    """Which of `names` a claim may take now: free and due (or kicked), or without a row yet.

    One SELECT: a tick where nothing is due (nearly every tick) costs each process one read,
    not a conditional UPDATE and an INSERT per task (16 statements a second per server
    process for 8 tasks). Only a hint: `claim()` decides, under the database's own lock. (Read
    at the tick's start: a task that falls due while an earlier one of the same tick runs
    waits for the next tick, at most a second more.)
    """
    now = time.time() if now is None else now
    rows = {
        name: (next_run, lease_until)
        for name, next_run, lease_until in PeriodicLease.objects.filter(name__in=names).values_list(
            "name", "next_run", "lease_until"
        )
    }
    return [
        name
        for name in names
        if name not in rows or (rows[name][1] <= now and (rows[name][0] <= now or name in _kicked))
    ]


def run_due(*, holder: str = HOLDER) -> list[str]:
    """Run every declared task that is due and whose lease this process gets; their names."""
    ran = []
    declared = tasks()
    for name in claimable(list(declared)):
        spec = declared[name]
        if not claim(name, float(spec["every"]), holder=holder, due=name in _kicked):
            continue
        _kicked.discard(name)
        _run(name, spec, holder)
        ran.append(name)
    return ran


def _run(name: str, spec: dict[str, Any], holder: str) -> Any:
    """One run of a claimed task; its result (a task may return seconds until it is due again)."""
    started = time.monotonic()
    try:
        return import_string(spec["task"])()
    except Exception:  # a failing task must not stop the runner or the other tasks
        logger.exception("periodic task %s failed", name)
        return None
    finally:
        release(name, holder=holder)
        logger.debug("periodic task %s ran in %.3fs", name, time.monotonic() - started)


def run_now(name: str, *, holder: str = HOLDER) -> float | None:
    """Run task `name` now if nobody else holds it: the seconds until it has work again
    (None: nothing pending; a holder elsewhere: ask again shortly)."""
    spec = tasks()[name]
    if not claim(name, float(spec["every"]), holder=holder, due=True):
        return KICK_RETRY_SECONDS
    result = _run(name, spec, holder)
    return float(result) if isinstance(result, int | float) else None


KICK_RETRY_SECONDS = 0.5
KICK_IDLE_SECONDS = 60.0  # longest wait of a kicked thread while work is pending
_kicked: set[str] = set()  # asked for by kick(): the runner takes them on its next tick


class _Kicked:
    """A process without a runner: one daemon thread that runs a kicked task until it reports
    nothing pending (or, at exit, nothing due now)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = self._exiting = False

    def wake(self) -> None:
        with self._lock:
            self._stopping = False
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name=f"periodic-{self.name}", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 10.0, *, exiting: bool = False) -> None:
        """End the thread: at once (tests), or once what is due now is done (process exit)."""
        with self._lock:
            if exiting:
                self._exiting = True
            else:
                self._stopping = True
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        from django.db import connections

        while not self._stopping:
            self._wake.clear()
            try:
                delay = run_now(self.name)
            except Exception:  # a database hiccup: try again later, never die silently
                logger.exception("periodic task %s (kicked) failed", self.name)
                delay = 5.0
            finally:
                connections.close_all()  # this thread's connections only
            with self._lock:
                if self._exiting:  # did what was due; later retries are the server's
                    finished = delay is None or delay > 0
                else:  # nothing pending and nobody kicked again meanwhile
                    finished = delay is None and not self._wake.is_set()
                if finished:
                    self._thread = None
                    return
            if delay:
                self._wake.wait(min(delay, KICK_IDLE_SECONDS))


_threads: dict[str, _Kicked] = {}


def kick(name: str) -> None:
    """Run task `name` promptly (call it after the commit that made its work due)."""
    with _lock:
        if _runner is not None and _runner.running:
            _kicked.add(name)  # the runner's next tick (≤ TICK_SECONDS) claims it, due or not
            return
        thread = _threads.setdefault(name, _Kicked(name))
    thread.wake()


def stop_kicked(name: str, timeout: float = 10.0) -> None:
    """Stop the kicked thread of `name` in this process (tests, before their DB goes away)."""
    thread = _threads.get(name)
    if thread is not None:
        thread.stop(timeout)


@atexit.register
def _finish_kicked() -> None:
    """A shell or command that kicked a task does what is due before it exits."""
    for thread in list(_threads.values()):
        thread.stop(exiting=True)


class Runner:
    """This process's loop: every TICK_SECONDS, run the due tasks in a worker thread.

    `beat` (monotonic) is stamped before and after each tick: readiness (config/health.py)
    reads how long the loop has been silent, i.e. how long the current tick has run.
    """

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.beat = time.monotonic()

    def silent_for(self) -> float:
        """Seconds since the loop last moved (≤ TICK_SECONDS unless a tick runs long)."""
        return max(0.0, time.monotonic() - self.beat)

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
            self.beat = time.monotonic()
            try:
                await step()
            except Exception:  # the database is down, say: try again next tick
                logger.exception("periodic runner tick failed")
            self.beat = time.monotonic()
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
    if not enabled():
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


def current() -> Runner | None:
    """This process's runner if it runs."""
    runner = _runner
    return runner if runner is not None and runner.running else None


def enabled() -> bool:
    """Whether server processes run the periodic runner (PERIODIC_ENABLED and some tasks)."""
    return bool(getattr(settings, "PERIODIC_ENABLED", True)) and bool(tasks())


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
