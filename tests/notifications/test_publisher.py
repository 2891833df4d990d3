"""The publisher: atomic claims, exactly one publisher per row, leases, commit-ordered positions,
the per-process loop, and the ASGI wiring."""

from __future__ import annotations

import asyncio
import copy
import secrets
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from config.background import BackgroundMiddleware
from notifications.events import outbox
from notifications.events import relay as publisher
from notifications.events.broadcast import broadcast
from notifications.events.catalog import SystemNotification
from notifications.models import EventTarget, StoredEvent
from notifications.realtime.layers import FanoutChannelLayer
from tests.concurrency import run_concurrently
from tests.conftest import require_program
from tests.liveserver import RedisCutProxy, RedisServer
from tests.notifications.conftest import make_listener, run

pytestmark = pytest.mark.django_db(transaction=True)


def fire(n: int = 1) -> list[StoredEvent]:
    """Store events as broadcast() does, but leave them unpublished whatever the layer (with
    Redis, broadcast() would publish them itself right after commit)."""
    rows = []
    for i in range(n):
        event = SystemNotification.create(message=f"n{i}")
        with transaction.atomic():
            stored = StoredEvent.objects.create(
                name=event.name,
                category=event.category,
                level=event.level,
                title=event.title,
                message=event.message,
                data=event.data,
            )
            EventTarget.objects.create(event=stored, group="system.admin")
        rows.append(stored)
    return rows


def test_fire_stores_like_broadcast():
    """Keeps the helper above honest: same rows as broadcast() minus the publish."""
    ours = fire()[0]
    theirs = broadcast(SystemNotification.create(message="n0"))
    fields = ("name", "category", "level", "title", "message", "data", "exclude_socket_id")
    assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]
    assert list(ours.targets.values("group", "roles")) == list(
        theirs.targets.values("group", "roles")
    )


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out():
    [stored] = fire()
    assert [row.id for row in outbox.claim()] == [stored.id]
    assert outbox.claim() == []
    StoredEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert [row.id for row in outbox.claim()] == [stored.id]  # its publisher died
    outbox.settle([stored.id], [])
    StoredEvent.objects.update(lease_until=None)
    assert outbox.claim() == []  # published rows are never claimed


def test_a_claim_of_no_ids_claims_nothing():
    fire()
    assert outbox.claim(ids=[]) == []
    assert StoredEvent.objects.filter(lease_until__isnull=False).count() == 0


def test_concurrent_claims_never_share_a_row():
    """Eight claimers at once (as eight server processes would): each row goes to one."""
    rows = fire(40)
    claimed = run_concurrently(lambda _: [row.id for row in outbox.claim(limit=10)], 8)
    flat = [i for ids in claimed for i in ids]
    assert len(flat) == len(set(flat)) == 40
    assert set(flat) == {row.id for row in rows}


def test_failed_sends_back_off_then_retry():
    [stored] = fire()
    [row] = outbox.claim()
    outbox.settle([], [row])
    stored.refresh_from_db()
    assert stored.published_at is None and stored.lease_until > timezone.now()
    assert outbox.claim() == []  # backing off
    StoredEvent.objects.update(lease_until=timezone.now())
    assert [r.id for r in outbox.claim()] == [stored.id]


def test_events_too_old_to_push_live_stay_stored_unpublished(settings):
    settings.NOTIFICATIONS_PUBLISH_MAX_AGE_SECONDS = 60
    [stored] = fire()
    StoredEvent.objects.update(occurred_at=timezone.now() - timedelta(minutes=5))
    assert outbox.claim() == []
    assert StoredEvent.objects.get(pk=stored.pk).published_at is None


def test_positions_follow_visibility_order():
    rows = fire(3)
    outbox.claim()
    positions = list(StoredEvent.objects.order_by("id").values_list("position", flat=True))
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert [r.id for r in rows] == list(
        StoredEvent.objects.order_by("position").values_list("id", flat=True)
    )


@pytest.mark.postgres
def test_a_late_commit_gets_a_later_position_than_events_committed_before_it():
    """Issue 5's trap: A takes id 1, B takes id 2 and commits first. Replay by id would skip A
    for a client that saw B; positions put A after B, so replay by position does not."""
    inserted, release = threading.Event(), threading.Event()
    ids = {}

    def slow_transaction():
        try:
            with transaction.atomic():
                ids["A"] = fire()[0].id
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    assert inserted.wait(10)
    ids["B"] = fire()[0].id
    assert ids["A"] < ids["B"]
    assert [row.id for row in outbox.claim()] == [ids["B"]]  # A is not visible yet
    release.set()
    thread.join(10)
    assert [row.id for row in outbox.claim()] == [ids["A"]]
    position = dict(StoredEvent.objects.values_list("id", "position"))
    assert position[ids["A"]] > position[ids["B"]]


async def test_two_publishers_deliver_every_event_exactly_once(listen):
    """Two Publisher loops (as two server processes) race for the same rows."""
    listener = await listen("system.admin")
    first, second = publisher.Publisher(interval=0.01), publisher.Publisher(interval=0.01)
    loop = asyncio.get_running_loop()
    first.start(loop)
    second.start(loop)
    try:
        stored = await run(fire)(30)
        deadline = time.monotonic() + 5
        received = []
        while len(received) < 30 and time.monotonic() < deadline:
            received += [m["id"] for m in await listener.collect()]
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        received += [m["id"] for m in await listener.collect()]
    finally:
        await first.stop()
        await second.stop()
    assert sorted(received) == sorted(row.id for row in stored)


async def test_ensure_started_is_idempotent_and_its_poll_delivers_what_another_thread_stored(
    listen,
):
    listener = await listen("system.admin")
    started = publisher.ensure_started()
    try:
        assert publisher.ensure_started() is started and started.running
        # Another thread stores an event without waking it (as the publisher of a process
        # that died would leave one): the next poll, 0.2 s later, sends it.
        stored = await asyncio.to_thread(lambda: (fire()[0], connection.close())[0])
        async with asyncio.timeout(20):  # room for a busy machine
            while not (messages := await listener.collect()):
                await asyncio.sleep(0.02)
        assert [m["id"] for m in messages] == [stored.id]
    finally:
        await publisher.stop()
    assert publisher.current() is None


@pytest.mark.parametrize("configured", [0.002, 0])
async def test_a_process_running_a_publisher_switches_threads_at_the_configured_interval(
    settings, configured
):
    """Its threads hand over at each step of a round; 0 leaves the interpreter's interval."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    settings.NOTIFICATIONS_SWITCH_INTERVAL_SECONDS = configured
    try:
        started = publisher.ensure_started()
        assert started is not None and started.running
        assert sys.getswitchinterval() == pytest.approx(configured or 0.005)
    finally:
        await publisher.stop()
        sys.setswitchinterval(before)


async def test_publisher_middleware_runs_the_publisher_from_lifespan_startup():
    inner_calls = []

    async def inner(scope, receive, send):
        inner_calls.append(scope["type"])

    app = BackgroundMiddleware(inner)
    incoming = asyncio.Queue()
    sent = []

    async def send(message):
        sent.append(message["type"])

    await incoming.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan"}, incoming.get, send))
    async with asyncio.timeout(2):
        while "lifespan.startup.complete" not in sent:
            await asyncio.sleep(0.01)
    assert publisher.current() is not None
    await incoming.put({"type": "lifespan.shutdown"})
    await task
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert publisher.current() is None
    await app({"type": "http"}, incoming.get, send)  # other scopes pass through (and start it)
    assert inner_calls == ["http"]
    assert publisher.current() is not None
    await publisher.stop()


def test_ensure_started_outside_an_event_loop(settings):
    """A process with no event loop (a worker, a script) gets a publisher on its own thread
    with a cross-process layer; with the in-memory layer it would reach nobody, so none."""
    from asgiref.sync import async_to_sync

    # A fresh layer: the process-wide one may hold state bound to earlier tests' event loops
    # (a server process has one loop for its life).
    settings.CHANNEL_LAYERS = copy.deepcopy(settings.CHANNEL_LAYERS)
    started = publisher.ensure_started()
    if not publisher.layer_crosses_processes():
        assert started is None
        return
    try:
        assert started.running and started.loop is not None
        [stored] = fire()
        deadline = time.monotonic() + 2
        while StoredEvent.objects.get(pk=stored.pk).published_at is None:
            assert time.monotonic() < deadline, "not published by the thread's publisher"
            time.sleep(0.05)
    finally:
        async_to_sync(publisher.stop)()
    assert publisher.current() is None


def test_which_layers_cross_processes(settings):
    from channels.layers import InMemoryChannelLayer

    class Declares:
        crosses_processes = False

    class RedisFlag:
        def __init__(self, is_redis):
            self.is_redis = is_redis

    assert not publisher.layer_crosses_processes(InMemoryChannelLayer())
    assert not publisher.layer_crosses_processes(Declares())
    assert not publisher.layer_crosses_processes(RedisFlag(False))  # a process-local layer
    assert publisher.layer_crosses_processes(RedisFlag(True))
    assert publisher.layer_crosses_processes(object())  # e.g. channels-redis


def test_channels_redis_layers_cross_processes_outside_an_event_loop():
    """channels-redis proxies unknown attributes to a per-loop layer: asking must not need one."""
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    assert publisher.layer_crosses_processes(RedisPubSubChannelLayer(hosts=["redis://x:1/0"]))
    assert publisher.layer_crosses_processes(RedisChannelLayer(hosts=["redis://x:1/0"]))


async def test_an_event_the_layer_rejects_does_not_hold_up_the_others(listen):
    """A row the layer refuses for itself (here: a group name Channels rejects) is retried on
    its own; the events behind it are delivered."""
    listener = await listen("system.admin")
    try:
        await listener.layer.group_send("not a valid group!", {"type": "test.x"})
        pytest.skip("this layer accepts any group name (channels-redis pub/sub)")
    except (TypeError, ValueError):
        pass

    def store():
        [bad, good] = fire(2)
        bad.targets.update(group="not a valid group!")
        return bad, good

    bad, good = await run(store)()
    assert await publisher.publish_pending() == 1
    assert [m["id"] for m in await listener.collect()] == [good.id]
    bad = await run(StoredEvent.objects.get)(pk=bad.pk)
    assert bad.published_at is None and bad.lease_until is not None  # backing off, not lost


async def test_a_crawling_publisher_gives_back_its_unsent_tail_before_its_lease_ends(
    listen, monkeypatch
):
    """Sends that crawl past half the lease stop: the tail goes back at once (no back-off), so
    no other process claims it when the lease runs out while this one is still sending it."""
    listener = await listen("system.admin")
    stored = await run(fire)(3)
    rows = await run(outbox.claim)()
    monkeypatch.setattr(publisher, "PIPELINE", 1)  # one event per round trip, as a crawl
    sent, failed, unsent = await publisher._send(rows, until=time.monotonic() - 1)
    assert (sent, failed) == ([stored[0].id], [])  # the first is always sent: progress
    await run(outbox.settle)(sent, failed, unsent)
    again = await run(outbox.claim)()
    assert [row.id for row in again] == [row.id for row in stored[1:]]  # claimable at once
    sent, failed = await publisher.send_events(again)
    await run(outbox.settle)(sent, failed)
    assert [m["id"] for m in await listener.collect()] == [row.id for row in stored]


@pytest.mark.parametrize("how", ["cut", "hung"])
async def test_events_redis_took_before_it_failed_are_not_published_again(
    how, redis_url, tmp_path, settings
):
    """Redis takes the first two events' PUBLISHes, then the pipeline breaks and Redis stays
    unreachable ("cut"), or Redis answers nothing more, the connection left open ("hung": the
    send timeout gives up). Those two are settled as published, only the third is retried,
    and a socket gets each once. Before, a hang lost what Redis had acknowledged and all
    three were sent again: Pusher clients, which do not deduplicate, showed two twice."""
    require_program("redis-server")
    settings.NOTIFICATIONS_SEND_TIMEOUT_SECONDS = 1.0
    server = RedisServer(dir=tmp_path).start()
    failure = {"then_refuse": True} if how == "cut" else {"hang": True}
    proxy = RedisCutProxy(("127.0.0.1", server.port), cut_after=2, **failure)
    proxy.start()
    prefix = f"{how}.{secrets.token_hex(4)}"
    sender = FanoutChannelLayer(hosts=[f"redis://127.0.0.1:{proxy.port}/0"], prefix=prefix)
    receiver = FanoutChannelLayer(hosts=[server.url], prefix=prefix)
    try:
        listener = await make_listener(receiver, "system.admin")
        stored = await run(fire)(3)
        assert await publisher.publish_pending(layer=sender) == 2
        assert proxy.cut.is_set()  # it failed part-way
        if how == "cut":
            proxy.start()  # Redis reachable again
        backing_off = StoredEvent.objects.filter(published_at__isnull=True)
        assert await run(lambda: [row.id for row in backing_off])() == [stored[2].id]
        await run(backing_off.update)(lease_until=timezone.now())  # no need to wait it out
        assert await publisher.publish_pending(layer=sender) == 1  # a new connection
        assert await _received(listener, 3) == [row.id for row in stored]
        assert await listener.collect() == []  # and no second copy of the first two
    finally:
        proxy.stop()
        await sender.flush()
        await receiver.flush()
        server.stop()


async def _received(listener, count: int, seconds: float = 10) -> list[int]:
    received: list[int] = []
    deadline = time.monotonic() + seconds
    while len(received) < count and time.monotonic() < deadline:
        received += [m["id"] for m in await listener.collect()]
        await asyncio.sleep(0.02)
    return received


#: what the LISTEN connections of a claimer and a follower last ran, once both tried the lock
CLAIMER_AND_FOLLOWER = ["LISTEN notifications_outbox", "SELECT pg_try_advisory_lock"]


def last_statements(application_name: str) -> list[str]:
    """The last statement of each idle connection so named, up to its first '(' (sorted)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name = %s AND state = 'idle'",
            [application_name],
        )
        return sorted(row[0].split("(")[0] for row in cursor.fetchall())


@pytest.mark.postgres
async def test_one_publisher_claims_and_another_takes_over_when_it_stops(
    listen, settings, monkeypatch
):
    """On PostgreSQL one process's publisher may claim for all (the others only wake it), so
    the claims are not contended; when it goes, another takes its place and nothing is lost."""
    settings.NOTIFICATIONS_SINGLE_CLAIMER = 1
    # Their LISTEN connections are named, so the test can see when both have tried the lock.
    name = f"claim-test-{secrets.token_hex(4)}"
    conninfo = publisher._conninfo
    monkeypatch.setattr(publisher, "_conninfo", lambda: f"{conninfo()} application_name={name}")

    listener = await listen("system.admin")
    first, second = publisher.Publisher(interval=0.05), publisher.Publisher(interval=0.05)
    loop = asyncio.get_running_loop()
    first.start(loop)
    second.start(loop)
    try:
        async with asyncio.timeout(10):
            while not (first.leading or second.leading):
                await asyncio.sleep(0.02)
        async with asyncio.timeout(30):  # the other has tried for the lock too
            while await run(last_statements)(name) != CLAIMER_AND_FOLLOWER:
                await asyncio.sleep(0.02)
        leaders = [first.leading, second.leading].count(True)
        leader, follower = (first, second) if first.leading else (second, first)
        stored = await run(fire)(10)
        before = await _received(listener, 10)
        await leader.stop()
        later = await run(fire)(5)
        after = await _received(listener, 5)
        took_over = follower.leading
    finally:
        for started in (first, second):
            if started.running:
                await started.stop()
    assert leaders == 1
    assert sorted(before) == sorted(row.id for row in stored)
    assert took_over
    assert sorted(after) == sorted(row.id for row in later)


@pytest.mark.postgres
async def test_a_followers_commit_wakes_the_claimer_at_once_and_followers_do_not_listen(
    listen, settings, monkeypatch
):
    """A follower's process commits: its NOTIFY wakes the claimer, which sends the event long
    before its next poll (60 s here). Followers do not LISTEN (they would only receive, and
    ignore, the others' wake-ups); the claimer does."""
    settings.NOTIFICATIONS_SINGLE_CLAIMER = 1
    name = f"wake-test-{secrets.token_hex(4)}"
    conninfo = publisher._conninfo
    monkeypatch.setattr(publisher, "_conninfo", lambda: f"{conninfo()} application_name={name}")

    claims = []
    claim = publisher.claim

    def counted_claim(**kwargs):
        found = claim(**kwargs)
        claims.append(len(found))
        return found

    monkeypatch.setattr(publisher, "claim", counted_claim)
    listener = await listen("system.admin")
    first, second = publisher.Publisher(interval=60), publisher.Publisher(interval=60)
    loop = asyncio.get_running_loop()
    first.start(loop)
    second.start(loop)
    try:
        async with asyncio.timeout(30):  # one holds the lock and LISTENs, the other tried it
            while await run(last_statements)(name) != CLAIMER_AND_FOLLOWER:
                await asyncio.sleep(0.02)
            # The claimer claims once right after its LISTEN (for what came before it): only
            # once that is over can the event below reach it by the follower's NOTIFY alone.
            while not claims:
                await asyncio.sleep(0.02)
        leader, follower = (first, second) if first.leading else (second, first)
        assert leader.leading and not follower.leading and follower.listening
        stored = await run(fire)(1)  # (no NOTIFY of its own, unlike broadcast() here)
        follower.wake()  # as broadcast() does after a commit in the follower's process
        received = await _received(listener, 1, seconds=20)
        told = await run(last_statements)(name)
    finally:
        for started in (first, second):
            await started.stop()
    assert received == [stored[0].id]
    # the claimer's start, the one its follower woke it for (and the look again after a send)
    assert claims[:2] == [0, 1] and not any(claims[2:])
    assert told == sorted(["LISTEN notifications_outbox", "SELECT set_config"])


@pytest.mark.postgres
async def test_a_publisher_that_cannot_listen_claims_itself_with_a_single_claimer(
    listen, settings, monkeypatch
):
    """With no LISTEN connection there is no lock to hold, so maybe no claimer at all: the
    publisher claims as it would without the single claimer (followers alone would only take
    events a second old, a batch per poll), and every event arrives."""
    from notifications.events import relay as relay_module

    settings.NOTIFICATIONS_SINGLE_CLAIMER = 1
    monkeypatch.setattr(  # a database the LISTEN connection cannot reach (port 1: refused)
        relay_module, "_conninfo", lambda: "host=127.0.0.1 port=1 dbname=x connect_timeout=2"
    )
    listener = await listen("system.admin")
    alone = publisher.Publisher(interval=0.05)
    alone.start(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(20):
            while not alone.leading:  # after its first failed connect
                await asyncio.sleep(0.02)
        assert not alone.listening
        stored = await run(fire)(150)  # more than one batch
        received = await _received(listener, 150, seconds=30)
    finally:
        await alone.stop()
    assert sorted(received) == sorted(row.id for row in stored)
