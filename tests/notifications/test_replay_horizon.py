"""Replay across two publishers: an event claimed earlier but sent later is not skipped (issue 5).

Two server processes each claim and publish rows: P1 claims position 1, P2 claims a higher
position and sends it first; a client that received P2's event live and dropped before P1's
arrived must get P1's on resume, once, and nothing of another tenant. The interleaving is forced
by calling the publisher's claim/send/settle steps in that order against the real database.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.db.models.functions import Now
from django.test import override_settings

from notifications.events import outbox
from notifications.events import relay as publisher
from notifications.models import EventTarget, StoredEvent
from notifications.replay import missed_events
from tests.notifications.wsutil import (
    committed_db,
    connect_user,
    drain,
)

pytestmark = [committed_db]


def _committed(tenant, message: str) -> StoredEvent:
    """A committed, not yet claimed event for `tenant` (as broadcast() stores it)."""
    event = StoredEvent.objects.create(
        name="SystemNotification",
        category="system",
        level="info",
        title="Notice",
        message=message,
        data={"tenant_id": tenant.pk, "user_id": None},
    )
    EventTarget.objects.create(event=event, group=f"tenant.{tenant.pk}")
    return event


def _claim(event: StoredEvent) -> StoredEvent:
    [row] = outbox.claim(ids=[event.pk])
    return row


def _published(event: StoredEvent) -> None:
    outbox.settle([event.pk], [])


def _db_clock_past(event: StoredEvent) -> None:
    """Wait (bounded) until the database's clock has moved past `event.published_at`.

    SQLite's clock has millisecond steps: a claim in the same millisecond as an earlier
    publish cannot be told apart from one just before it (and is replayed, as a duplicate).
    """
    published_at = StoredEvent.objects.get(pk=event.pk).published_at
    deadline = time.monotonic() + 2
    while StoredEvent.objects.filter(pk=event.pk, published_at__gte=Now()).exists():
        assert time.monotonic() < deadline, f"database clock stuck at {published_at}"
        time.sleep(0.002)


def _texts(frames: list[str]) -> list[str]:
    return [json.loads(text)["message"] for text in frames]


def _interleave(tenant, other_tenant) -> dict[str, StoredEvent]:
    """P1 claims "late"; P2 publishes "earlier", claims "other tenant", then publishes "seen".

    Positions: late 1, earlier 2, other 3, seen 4. The client received "earlier" and "seen"
    live and dropped before "late" (and "other", not its tenant) were sent.
    """
    rows = {
        "late": _committed(tenant, "late"),
        "earlier": _committed(tenant, "earlier"),
        "other": _committed(other_tenant, "other tenant"),
        "seen": _committed(tenant, "seen"),
    }
    _claim(rows["late"])  # P1: numbers all four, leases "late", then stalls
    _claim(rows["earlier"])  # P2
    _published(rows["earlier"])
    _db_clock_past(rows["earlier"])
    _claim(rows["other"])  # P2, in flight
    _claim(rows["seen"])  # P2
    _published(rows["seen"])  # the client has it, then drops
    _published(rows["late"])  # P1 at last
    _published(rows["other"])
    return {name: StoredEvent.objects.get(pk=row.pk) for name, row in rows.items()}


@override_settings(NOTIFICATIONS_REPLAY_CLOCK_MARGIN_SECONDS=0)
def test_an_event_claimed_first_but_published_after_the_seen_one_is_replayed_once(
    staff, tenant, other_tenant
):
    rows = _interleave(tenant, other_tenant)
    assert [rows[n].position for n in ("late", "earlier", "other", "seen")] == [1, 2, 3, 4]
    # "seen" was claimed while "late" (position 1) was still unpublished: its horizon.
    assert rows["seen"].replay_from == 1
    assert rows["earlier"].published_at < rows["seen"].claimed_at

    replay = missed_events(
        user_id=staff.pk, last_id=rows["seen"].pk, channels=[f"tenant.{tenant.pk}"]
    )
    # Exactly the late one: not "earlier" (published before "seen" was claimed, so the client
    # had it), not "seen" itself, never the other tenant's.
    assert _texts(replay.frames) == ["late"]
    assert not replay.resync


@override_settings(NOTIFICATIONS_REPLAY_CLOCK_MARGIN_SECONDS=60)
def test_within_the_clock_margin_overlap_is_replayed_and_nothing_leaks(staff, tenant, other_tenant):
    rows = _interleave(tenant, other_tenant)  # all within the margin
    replay = missed_events(
        user_id=staff.pk, last_id=rows["seen"].pk, channels=[f"tenant.{tenant.pk}"]
    )
    # "earlier" comes again (the client drops it by id); "late" once; nothing of "other".
    assert _texts(replay.frames) == ["late", "earlier"]


def test_a_row_sent_after_a_rejected_one_of_its_batch_replays_it(staff, tenant):
    """One publisher, one batch: the first row is rejected (retried later), the second sent."""
    first, second = _committed(tenant, "rejected"), _committed(tenant, "sent")
    rows = outbox.claim()
    assert [row.pk for row in rows] == [first.pk, second.pk]
    assert StoredEvent.objects.get(pk=second.pk).replay_from == 2  # nothing outside the batch
    outbox.settle([second.pk], [rows[0]])
    assert StoredEvent.objects.get(pk=second.pk).replay_from == 1

    channels = [f"tenant.{tenant.pk}"]
    replay = missed_events(user_id=staff.pk, last_id=second.pk, channels=channels)
    assert _texts(replay.frames) == ["rejected"]  # claimed (in flight or backing off)


def test_a_retried_row_keeps_the_lowest_horizon_of_its_attempts(staff, tenant):
    """Batch [a, b] fails as a whole; b alone is then sent first (publish_now): a is still late."""
    a, b = _committed(tenant, "a"), _committed(tenant, "b")
    rows = outbox.claim()
    outbox.settle([], rows)
    StoredEvent.objects.update(lease_until=None)  # the back-off is over
    _claim(b)
    _published(b)
    assert StoredEvent.objects.get(pk=b.pk).replay_from == 1
    replay = missed_events(user_id=staff.pk, last_id=b.pk, channels=[f"tenant.{tenant.pk}"])
    assert _texts(replay.frames) == ["a"]
    assert a.pk < b.pk


def test_pages_resume_from_the_newest_published_event_and_list_what_they_hold(
    client, staff, tenant, other_tenant
):
    rows = {
        "late": _committed(tenant, "late"),
        "earlier": _committed(tenant, "earlier"),
        "other": _committed(other_tenant, "other tenant"),
        "seen": _committed(tenant, "seen"),
        "in flight": _committed(tenant, "in flight"),
    }
    _claim(rows["late"])
    for name in ("earlier", "other", "seen"):
        _claim(rows[name])
        _published(rows[name])
    _claim(rows["in flight"])  # claimed, not yet published when the page renders

    client.force_login(staff)
    html = client.get("/users/").content.decode()
    raw = html.split('<script id="notifications-config" type="application/json">')[1]
    config = json.loads(raw.split("</script>")[0])
    # Resume from the newest *published* event; the page holds "earlier" (of its tenant only).
    assert config["last_id"] == rows["seen"].pk
    assert config["seen_ids"] == [rows["earlier"].pk]

    replay = missed_events(
        user_id=staff.pk, last_id=config["last_id"], channels=[f"tenant.{tenant.pk}"]
    )
    ids = [json.loads(text)["id"] for text in replay.frames]
    assert ids == [rows["late"].pk, rows["earlier"].pk, rows["in flight"].pk]
    shown = [pk for pk in ids if pk not in config["seen_ids"]]
    assert shown == [rows["late"].pk, rows["in flight"].pk]


@pytest.mark.usefixtures("fresh_layer")
async def test_resume_on_a_real_socket_gets_the_event_another_process_sent_late(
    staff, tenant, other_tenant
):
    """The live path end to end: the socket gets "seen" live, drops, "late" is sent after."""
    late = await database_sync_to_async(_committed)(tenant, "late")
    other = await database_sync_to_async(_committed)(other_tenant, "other tenant")
    seen = await database_sync_to_async(_committed)(tenant, "seen")
    p1 = await database_sync_to_async(outbox.claim)(ids=[late.pk])
    p2 = await database_sync_to_async(outbox.claim)(ids=[other.pk, seen.pk])

    comm, _ = await connect_user(staff)
    sent, _ = await publisher.send_events(p2)
    await database_sync_to_async(outbox.settle)(sent, [])
    frame = await comm.receive_json_from(timeout=3)
    assert (frame["id"], await drain(comm, 0.2)) == (seen.pk, [])
    await comm.disconnect()

    sent, _ = await publisher.send_events(p1)  # P1 at last: nobody of the tenant is connected
    await database_sync_to_async(outbox.settle)(sent, [])

    comm, _ = await connect_user(staff)
    await comm.send_json_to({"action": "resume", "last_id": seen.pk})
    frames = [await comm.receive_json_from(timeout=3), await comm.receive_json_from(timeout=3)]
    frames += await drain(comm, 0.3)
    assert [(f["type"], f.get("id")) for f in frames] == [("event", late.pk), ("resumed", None)]
    await comm.disconnect()


@pytest.mark.postgres
@override_settings(NOTIFICATIONS_REPLAY_CLOCK_MARGIN_SECONDS=0)
def test_two_database_connections_interleaving_on_postgresql(staff, tenant, other_tenant):
    """The same interleaving from two threads, each with its own PostgreSQL connection."""
    late, seen = _committed(tenant, "late"), _committed(tenant, "seen")
    _committed(other_tenant, "other tenant")
    p1_claimed, p2_done, errors = threading.Event(), threading.Event(), []

    def process(steps):
        try:
            steps()
        except Exception as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connection.close()

    def p1():
        _claim(late)
        p1_claimed.set()
        assert p2_done.wait(10)
        _published(late)

    def p2():
        assert p1_claimed.wait(10)
        for row in outbox.claim(limit=10):  # "other tenant" and "seen"
            outbox.settle([row.pk], [])
        p2_done.set()

    threads = [threading.Thread(target=process, args=(fn,)) for fn in (p1, p2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert errors == []
    assert (
        StoredEvent.objects.get(pk=seen.pk).replay_from
        == StoredEvent.objects.get(pk=late.pk).position
    )

    replay = missed_events(user_id=staff.pk, last_id=seen.pk, channels=[f"tenant.{tenant.pk}"])
    assert _texts(replay.frames) == ["late"]
