"""config/periodic.py: leases, the runner, its middleware, and exactly-once across processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from config import periodic
from tests.liveserver import BASE_DIR, server_env

RUNNER = """
import asyncio, django, sys
django.setup()
from django.conf import settings
from config import periodic
settings.PERIODIC_ENABLED = True
settings.PERIODIC_TASKS = {"probe": {"task": "tests.config.periodic_probe.record", "every": 1.0}}
print("ready", flush=True)
asyncio.run(periodic.run_for(float(sys.argv[1])))
"""


@pytest.mark.django_db
def test_a_lease_is_taken_once_per_interval_and_never_while_held():
    now = 1_000_000.0
    assert periodic.claim("t-lease", 10, holder="a", now=now)
    assert not periodic.claim("t-lease", 10, holder="b", now=now)  # held and not due
    periodic.release("t-lease", holder="a")
    assert not periodic.claim("t-lease", 10, holder="b", now=now + 5)  # free, not due yet
    assert periodic.claim("t-lease", 10, holder="b", now=now + 10)  # due: b gets it
    # b's run outlasts the interval: still nobody else may start it...
    assert not periodic.claim("t-lease", 10, holder="a", now=now + 25)
    # ...until b's lease has lapsed (b died mid-run).
    assert periodic.claim("t-lease", 10, holder="a", now=now + 10 + periodic.LEASE_SECONDS)


@pytest.mark.django_db
def test_run_due_runs_each_due_task_and_survives_a_failing_one(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("PERIODIC_PROBE_FILE", str(tmp_path / "runs"))
    settings.PERIODIC_TASKS = {
        "t-boom": {"task": "tests.config.periodic_probe.explode", "every": 60},
        "t-probe": {"task": "tests.config.periodic_probe.record", "every": 60},
    }
    assert periodic.run_due(holder="x") == ["t-boom", "t-probe"]
    assert periodic.run_due(holder="x") == []  # not due again for a minute
    assert len((tmp_path / "runs").read_text().splitlines()) == 1


@pytest.mark.django_db
def test_a_tick_with_nothing_due_is_one_read(settings, tmp_path, monkeypatch):
    """Every server process ticks every second: with nothing due it must not write (it took
    an UPDATE and an INSERT per task)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setenv("PERIODIC_PROBE_FILE", str(tmp_path / "runs"))
    settings.PERIODIC_TASKS = {
        f"t-quiet-{k}": {"task": "tests.config.periodic_probe.record", "every": 60}
        for k in range(8)
    }
    assert len(periodic.run_due(holder="x")) == 8  # first ticks: each row is made and run
    with CaptureQueriesContext(connection) as queries:
        assert periodic.run_due(holder="y") == []
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert queries[0]["sql"].lstrip().upper().startswith("SELECT")
    assert len((tmp_path / "runs").read_text().splitlines()) == 8


@pytest.mark.django_db
def test_claimable_names_the_free_due_kicked_and_new_tasks_only(monkeypatch):
    now = 2_000_000.0
    assert periodic.claim("t-held", 10, holder="a", now=now)  # held, not released
    assert periodic.claim("t-later", 10, holder="a", now=now)
    periodic.release("t-later", holder="a")  # free, due at now + 10
    assert periodic.claim("t-kicked", 10, holder="a", now=now)
    periodic.release("t-kicked", holder="a")  # free, not due, but kicked
    monkeypatch.setattr(periodic, "_kicked", {"t-kicked"})
    names = ["t-held", "t-later", "t-kicked", "t-new"]
    assert periodic.claimable(names, now=now + 1) == ["t-kicked", "t-new"]
    assert periodic.claimable(names, now=now + 10) == ["t-later", "t-kicked", "t-new"]
    # held past its lease (the holder died): claimable again
    assert "t-held" in periodic.claimable(names, now=now + periodic.LEASE_SECONDS + 10)
    # a kick never overrides a lease
    monkeypatch.setattr(periodic, "_kicked", {"t-held"})
    assert "t-held" not in periodic.claimable(names, now=now + 1)


@pytest.mark.django_db
def test_a_kicked_task_runs_on_the_next_tick_though_not_due(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("PERIODIC_PROBE_FILE", str(tmp_path / "runs"))
    settings.PERIODIC_TASKS = {
        "t-kick": {"task": "tests.config.periodic_probe.record", "every": 3600}
    }
    monkeypatch.setattr(periodic, "_kicked", set())
    assert periodic.run_due(holder="x") == ["t-kick"]  # its first run
    assert periodic.run_due(holder="x") == []  # not due for an hour
    periodic._kicked.add("t-kick")
    assert periodic.run_due(holder="x") == ["t-kick"]  # kicked: runs, and the kick is used up
    assert periodic._kicked == set()
    assert periodic.run_due(holder="x") == []
    assert len((tmp_path / "runs").read_text().splitlines()) == 2


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_app_starts_the_runner_on_lifespan_startup(settings, tmp_path, monkeypatch):
    from config.asgi import application

    monkeypatch.setenv("PERIODIC_PROBE_FILE", str(tmp_path / "runs"))
    settings.PERIODIC_ENABLED = True
    settings.PERIODIC_TASKS = {
        "t-asgi": {"task": "tests.config.periodic_probe.record", "every": 3600}
    }
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    server = asyncio.create_task(application({"type": "lifespan"}, inbox.get, send))
    deadline = time.monotonic() + 30
    while not (tmp_path / "runs").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (tmp_path / "runs").exists(), "the runner did not run the task"
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(server, 10)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert periodic._runner is None


@pytest.mark.django_db(transaction=True)
def test_two_processes_run_each_interval_exactly_once(tmp_path):
    probe = tmp_path / "runs"
    env = {**server_env(redis_url=None), "PERIODIC_PROBE_FILE": str(probe)}
    seconds = 6.0
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(seconds)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "ready" in output, output
    runs = sorted(
        (float(start), float(end), int(pid))
        for pid, start, end in (line.split() for line in probe.read_text().splitlines())
    )
    assert len(runs) >= 2, runs
    # One at a time: no run starts before the previous one ended...
    for (_, end, _), (start, _, _) in zip(runs, runs[1:], strict=False):
        assert start >= end, runs
    # ...and once per interval (every = 1 s): two processes never both take the same turn.
    starts = [start for start, _, _ in runs]
    assert all(b - a > 0.5 for a, b in zip(starts, starts[1:], strict=False)), runs
    assert len(runs) <= seconds / 1.0 + 2, runs


OLD_RUNNER_DDL = (  # what config/periodic.py ran at run time before the table had a migration
    "CREATE TABLE IF NOT EXISTS periodic_lease ("
    "name VARCHAR(200) PRIMARY KEY, holder VARCHAR(200) NOT NULL, "
    "next_run DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION NOT NULL)"
)


@pytest.mark.django_db(transaction=True)
def test_a_database_whose_lease_table_the_old_runner_created_migrates_and_keeps_its_rows():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from config.models import PeriodicLease

    executor = MigrationExecutor(connection)
    executor.migrate([("config", None)])  # as before the migration existed: no table
    assert "periodic_lease" not in connection.introspection.table_names()
    try:
        with connection.cursor() as cursor:  # the old runner's first claim on that database
            cursor.execute(OLD_RUNNER_DDL)
            cursor.execute(
                "INSERT INTO periodic_lease VALUES (%s, %s, %s, %s)", ["t-old", "old", 5.0, 0.0]
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes("config"))
    assert MigrationExecutor(connection).migration_plan([("config", "0001_initial")]) == []
    assert PeriodicLease.objects.get(name="t-old").holder == "old"
    assert periodic.claim("t-old", 10, holder="new", now=10.0)
    assert not periodic.claim("t-old", 10, holder="other", now=10.0)
    assert periodic.claim("t-new", 10, holder="new", now=10.0)  # a first claim: the INSERT
