"""Missed-event replay: `{"action": "resume", "last_id": N}` on /ws/notifications/ (issue 5)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings
from django.utils import timezone

from notifications.events import relay as publisher
from notifications.events.broadcast import broadcast
from notifications.events.catalog import Event, SystemNotification, Target
from notifications.models import EventTarget, StoredEvent
from notifications.replay import missed_events
from tests.notifications.wsutil import (
    committed_db,
    connect_user,
    drain,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


@database_sync_to_async
def emit(text: str, *, tenant=None, user=None, roles: tuple[str, ...] | None = None) -> int:
    """Broadcast a notice (to a tenant, optionally only some roles, or a user); its id."""
    if roles is not None:
        event = Event(
            name="SystemNotification",
            category="system",
            level="info",
            title="Notice",
            message=text,
            data={"tenant_id": tenant.pk, "user_id": None},
            targets=[Target(f"tenant.{tenant.pk}", roles)],
        )
    else:
        event = SystemNotification.create(message=text, tenant=tenant, user=user)
    return broadcast(event, exclude=None).pk


async def published(*ids: int) -> None:
    """Publish what is pending and wait until `ids` are published (or handed to the layer)."""
    await publisher.publish_pending()
    async with asyncio.timeout(5):
        while await database_sync_to_async(
            lambda: StoredEvent.objects.filter(pk__in=ids, published_at__isnull=True).count()
        )():
            await asyncio.sleep(0.05)


async def resume(comm, last_id) -> list[dict]:
    """Send resume; every frame up to the final one (resumed/resync/error) plus stragglers."""
    await comm.send_json_to({"action": "resume", "last_id": last_id})
    frames = []
    while True:
        frame = await comm.receive_json_from(timeout=5)
        frames.append(frame)
        if frame["type"] in ("resumed", "resync", "error"):
            break
    return frames + await drain(comm, 0.3)


def event_ids(frames: list[dict]) -> list[int]:
    return [frame["id"] for frame in frames if frame["type"] == "event"]


async def test_resume_after_a_drop_delivers_exactly_the_missed_events_once(staff, tenant):
    comm, _ = await connect_user(staff)
    seen = await emit("before the drop", tenant=tenant)
    await published(seen)
    assert (await comm.receive_json_from(timeout=3))["id"] == seen
    await comm.disconnect()

    missed = [await emit(f"missed {n}", tenant=tenant) for n in range(3)]
    missed.append(await emit("for me", user=staff))
    await published(*missed)

    comm, _ = await connect_user(staff)
    frames = await resume(comm, seen)
    assert event_ids(frames) == missed  # oldest first, each once, nothing already seen
    assert frames[len(missed)] == {"type": "resumed"}
    assert [f["message"] for f in frames[:3]] == ["missed 0", "missed 1", "missed 2"]
    # Live events still flow after the replay.
    live = await emit("live", tenant=tenant)
    await published(live)
    assert (await comm.receive_json_from(timeout=3))["id"] == live
    await comm.disconnect()


async def test_resume_with_nothing_missed_just_says_resumed(staff, tenant):
    seen = await emit("seen", tenant=tenant)
    await published(seen)
    comm, _ = await connect_user(staff)
    assert await resume(comm, seen) == [{"type": "resumed"}]
    await comm.disconnect()


async def test_resume_never_replays_other_tenants_or_admin_only_events(
    staff, tenant_admin, other_admin, tenant, other_tenant
):
    seen = await emit("start", tenant=tenant)
    await published(seen)
    other = await emit("beta's business", tenant=other_tenant)
    admins_only = await emit("admins only", tenant=tenant, roles=("tenant_admin",))
    someone_else = await emit("for the admin", user=tenant_admin)
    everyone = await emit("everyone at acme", tenant=tenant)
    await published(other, admins_only, someone_else, everyone)

    comm, _ = await connect_user(staff)
    assert event_ids(await resume(comm, seen)) == [everyone]
    await comm.disconnect()

    comm, _ = await connect_user(tenant_admin)
    assert event_ids(await resume(comm, seen)) == [admins_only, someone_else, everyone]
    await comm.disconnect()

    comm, _ = await connect_user(other_admin)
    assert event_ids(await resume(comm, seen)) == [other]
    await comm.disconnect()


async def test_resume_skips_unsubscribed_channels(staff, tenant):
    seen = await emit("start", tenant=tenant)
    await published(seen)
    tenant_event = await emit("tenant", tenant=tenant)
    own = await emit("mine", user=staff)
    await published(tenant_event, own)
    comm, _ = await connect_user(staff)
    await comm.send_json_to({"action": "unsubscribe", "channel": f"tenant.{tenant.pk}"})
    assert (await comm.receive_json_from())["type"] == "unsubscribed"
    assert event_ids(await resume(comm, seen)) == [own]
    await comm.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"action": "resume"}, "missing_field"),
        ({"action": "resume", "last_id": -1}, "invalid_field"),
        ({"action": "resume", "last_id": "5"}, "invalid_field"),
        ({"action": "resume", "last_id": 1.5}, "invalid_field"),
        ({"action": "resume", "last_id": True}, "invalid_field"),
        ({"action": "resume", "last_id": None}, "invalid_field"),
        ({"action": "resume", "last_id": 2**70}, "invalid_field"),
        ({"action": "resume", "last_id": 0, "previous_socket_id": "abc"}, "invalid_field"),
        ({"action": "resume", "last_id": 0, "previous_socket_id": 12}, "invalid_field"),
    ],
)
async def test_bad_resume_frames_get_an_error_and_replay_nothing(frame, code, staff, tenant):
    await published(await emit("stored", tenant=tenant))
    comm, _ = await connect_user(staff)
    await comm.send_json_to(frame)
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["code"] == code
    assert reply["field"] == ("previous_socket_id" if "previous_socket_id" in frame else "last_id")
    assert await drain(comm) == []
    # The socket still works.
    await comm.send_json_to({"action": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.disconnect()


async def test_unknown_or_pruned_last_id_asks_for_a_resync(staff, tenant):
    gone = await emit("pruned later", tenant=tenant)
    await published(gone)
    await database_sync_to_async(StoredEvent.objects.filter(pk=gone).delete)()
    comm, _ = await connect_user(staff)
    assert await resume(comm, gone) == [{"type": "resync"}]
    assert await resume(comm, 10**12) == [{"type": "resync"}]
    await comm.disconnect()


@override_settings(NOTIFICATIONS_REPLAY_LIMIT=2)
async def test_a_gap_larger_than_the_bound_asks_for_a_resync(staff, tenant):
    seen = await emit("seen", tenant=tenant)
    ids = [await emit(f"missed {n}", tenant=tenant) for n in range(3)]
    await published(seen, *ids)
    comm, _ = await connect_user(staff)
    assert await resume(comm, seen) == [{"type": "resync"}]
    assert event_ids(await resume(comm, ids[0])) == ids[1:]
    await comm.disconnect()


# -- the replay query itself (sync) ----------------------------------------------------------


def _stored(tenant, *, position: int | None, published: bool = True, **fields) -> StoredEvent:
    event = StoredEvent.objects.create(
        name="SystemNotification",
        category="system",
        level="info",
        title="t",
        message=fields.pop("message", "m"),
        position=position,
        published_at=timezone.now() if published else None,
        **fields,
    )
    EventTarget.objects.create(event=event, group=f"tenant.{tenant.pk}")
    return event


def test_a_late_commit_with_a_lower_id_is_not_skipped(staff, tenant):
    """Transaction A took the lower id but committed after B: B got the lower position."""
    committed_late = _stored(tenant, position=None, message="A")
    committed_first = _stored(tenant, position=1, message="B")
    StoredEvent.objects.filter(pk=committed_late.pk).update(position=2)
    assert committed_late.id < committed_first.id

    replay = missed_events(
        user_id=staff.pk, last_id=committed_first.id, channels=[f"tenant.{staff.tenant_id}"]
    )
    assert ['"message":"A"' in text for text in replay.frames] == [True]


def test_events_not_yet_handed_to_the_layer_are_left_to_the_live_path(staff, tenant):
    seen = _stored(tenant, position=1)
    _stored(tenant, position=2, published=False)  # positioned, never claimed
    replay = missed_events(user_id=staff.pk, last_id=seen.id, channels=[f"tenant.{tenant.pk}"])
    assert replay.frames == []
    assert not replay.resync


def test_a_last_id_older_than_the_replay_window_asks_for_a_resync(staff, tenant):
    old = _stored(tenant, position=1, occurred_at=timezone.now() - timedelta(days=3))
    _stored(tenant, position=2)
    replay = missed_events(user_id=staff.pk, last_id=old.id, channels=[f"tenant.{tenant.pk}"])
    assert replay.resync


def test_a_user_moved_to_another_tenant_loses_the_old_tenants_history(staff, tenant, other_tenant):
    channels = [f"tenant.{tenant.pk}", f"user.{staff.pk}"]  # the socket's groups at connect
    seen = _stored(tenant, position=1)
    _stored(tenant, position=2)
    assert len(missed_events(user_id=staff.pk, last_id=seen.id, channels=channels).frames) == 1

    type(staff).objects.filter(pk=staff.pk).update(tenant=other_tenant)
    assert missed_events(user_id=staff.pk, last_id=seen.id, channels=channels).frames == []


def test_a_removed_or_deactivated_user_gets_no_history(staff, tenant):
    channels = [f"tenant.{tenant.pk}", f"user.{staff.pk}"]
    seen = _stored(tenant, position=1)
    _stored(tenant, position=2)
    type(staff).objects.filter(pk=staff.pk).update(is_active=False)
    assert missed_events(user_id=staff.pk, last_id=seen.id, channels=channels).frames == []
    type(staff).objects.filter(pk=staff.pk).delete()
    assert missed_events(user_id=staff.pk, last_id=seen.id, channels=channels).frames == []


def test_pages_carry_the_newest_event_id_as_their_resume_point(client, staff, tenant):
    import json

    _stored(tenant, position=1)
    newest = _stored(tenant, position=2)
    _stored(tenant, position=None, published=False)  # not yet replayable
    client.force_login(staff)
    html = client.get("/users/").content.decode()
    raw = html.split('<script id="notifications-config" type="application/json">')[1]
    assert json.loads(raw.split("</script>")[0])["last_id"] == newest.id


async def test_a_tab_is_not_replayed_the_events_its_previous_socket_caused(staff, tenant):
    """toOthers across a form post: the new page's socket names the old one."""
    seen = await emit("seen", tenant=tenant)
    await published(seen)
    mine = await database_sync_to_async(
        lambda: broadcast(SystemNotification.create(message="mine", tenant=tenant), exclude="1.2")
    )()
    theirs = await database_sync_to_async(
        lambda: broadcast(SystemNotification.create(message="theirs", tenant=tenant), exclude="3.4")
    )()
    await published(mine.pk, theirs.pk)
    comm, _ = await connect_user(staff)
    await comm.send_json_to({"action": "resume", "last_id": seen, "previous_socket_id": "1.2"})
    frames = [await comm.receive_json_from(timeout=3), await comm.receive_json_from(timeout=3)]
    assert [f.get("id") for f in frames] == [theirs.pk, None]
    assert frames[1] == {"type": "resumed"}
    # Without naming it, both are replayed.
    assert event_ids(await resume(comm, seen)) == [mine.pk, theirs.pk]
    await comm.disconnect()
