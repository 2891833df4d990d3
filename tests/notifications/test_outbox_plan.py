"""The outbox claim on PostgreSQL keeps its cost when the planner's statistics do not describe
the outbox (here: none, the table is new).

Every stored event is inserted, numbered and published: three versions of its row, and until a
vacuum the indexes of unnumbered and unpublished rows keep an entry for each old one. Without
statistics the planner chose bitmap scans, which visit all of them with their heap pages every
time (they never mark them dead); `outbox.CLAIM_LOCK_SQL` plans the claim with index scans,
which do. And a poor estimate passed `jit_above_cost`: compiling took most of each claim's
time; it runs without JIT. Statistics taken during a backlog made it walk the table: it has
partial indexes of its own and joins by nested loops. (bench/outbox_dead_rows.py measures the
three states of the statistics, bench/RESULTS.md §19.)
"""

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications.events import outbox
from notifications.models import EventTarget, StoredEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


TABLES = (StoredEvent._meta.db_table, EventTarget._meta.db_table)


@pytest.fixture
def nothing_holds_the_horizon():
    """Dead entries are marked only once no snapshot can see them: no autovacuum (its ANALYZE
    holds one) on the outbox tables, and no other session of this database holding one."""
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    deadline = time.monotonic() + 30
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, query FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid() "
                "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)"
            )
            holders = cursor.fetchall()
        if not holders:
            break
        assert time.monotonic() < deadline, f"sessions holding snapshots: {holders}"
        time.sleep(0.05)
    yield
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")


def store(n: int) -> None:
    """`n` unpublished events to one group (bulk: the test is about what is left behind)."""
    rows = StoredEvent.objects.bulk_create(
        StoredEvent(name="SystemNotification", category="system", title="t", message=f"m{i}")
        for i in range(n)
    )
    EventTarget.objects.bulk_create(EventTarget(event=row, group="system.admin") for row in rows)


def publish_all() -> None:
    while rows := outbox.claim(limit=500, check_first=False):
        outbox.settle([row.id for row in rows], [])


def buffers(first: str, sql: str, params) -> int:
    """Shared buffers `sql` touches, run after `first` (its lock and plan settings), rolled
    back."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(first, params if isinstance(params, dict) else None)
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
        transaction.set_rollback(True)
    plan = plan[0]["Plan"] if isinstance(plan, list) else plan
    return sum(plan.get(key, 0) for key in ("Shared Hit Blocks", "Shared Read Blocks"))


def claim_buffers() -> int:
    """What the next claim's statement touches."""
    sql, params = outbox.claim_statement(None, 100)
    return buffers(outbox.CLAIM_LOCK_SQL, sql, params)


def check_buffers() -> int:
    """What an idle poll's check for claimable events touches."""
    queryset = outbox._claimable(timezone.now()).order_by().values("pk")[:1]
    return buffers(outbox.INDEX_SCANS_SQL, *queryset.query.sql_with_params())


def test_a_claim_does_not_revisit_the_rows_published_before_it(nothing_holds_the_horizon):
    store(200)
    publish_all()
    store(5)
    outbox.claim(limit=100, check_first=False)  # the first scan after a burst marks it dead
    store(5)
    after_few = claim_buffers()

    store(4000)
    publish_all()  # 4,000 more rows, each left twice in the claim's indexes
    store(5)
    outbox.claim(limit=100, check_first=False)
    store(5)
    after_many = claim_buffers()

    # A bitmap scan reads every heap page holding an old version (measured: 88 buffers, then
    # 392, with bitmap scans allowed); an index scan skips the entries marked dead and reads
    # only the index pages that hold them, until a vacuum removes them (88, then 143).
    assert after_many - after_few < 4000 / 50, (after_few, after_many)


def test_an_idle_polls_check_does_not_revisit_the_rows_published_before_it(
    nothing_holds_the_horizon,
):
    store(200)
    publish_all()
    outbox.claim()  # (an idle poll: its check finds nothing)
    after_few = check_buffers()

    store(4000)
    publish_all()
    outbox.claim()
    after_many = check_buffers()

    # Measured: 1 buffer, then 70 (the index pages of the dead entries); 209 with bitmap scans
    # allowed (their heap pages too).
    assert after_many - after_few < 4000 / 40, (after_few, after_many)


def test_a_claim_is_never_jit_compiled():
    """However high the planner's estimate (here: any cost passes the JIT threshold)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_jit_available()")
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL server has no JIT (llvmjit) to turn off")
    store(5)
    sql, params = outbox.claim_statement(None, 100)

    def plan(first: str) -> dict:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit_above_cost = 0")
            cursor.execute(first, params)
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            found = cursor.fetchone()[0]
            transaction.set_rollback(True)
        return found[0] if isinstance(found, list) else found

    assert "JIT" in plan("SELECT pg_advisory_xact_lock(%(lock)s)")  # PostgreSQL's default
    assert "JIT" not in plan(outbox.CLAIM_LOCK_SQL)


def test_a_claim_stays_on_its_indexes_after_statistics_taken_during_a_backlog(
    nothing_holds_the_horizon,
):
    """An ANALYZE while 4,000 events waited (an outage) tells the planner most rows are
    unnumbered and few numbered; autoanalyze looks again only a tenth of the table later."""
    store(4000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {StoredEvent._meta.db_table}")
    publish_all()
    store(5)
    outbox.claim(limit=100, check_first=False)
    store(5)
    # Measured: 155 buffers; without the claim's own indexes and nested loops, 11,679 (the
    # primary key walked for the unnumbered rows and merge-joined for the UPDATE).
    assert claim_buffers() < 4000 / 10
