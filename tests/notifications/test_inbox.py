"""The notification inbox: what each user sees, unread counts, read state (API and live sync)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command
from django.utils import timezone

from notifications import inbox
from notifications.events import outbox
from notifications.events.broadcast import broadcast
from notifications.events.catalog import Event, SystemNotification, Target
from notifications.models import NotificationRead, StoredEvent
from tests.notifications.wsutil import committed_db, connect_user, drain

URL = "/api/notifications/"


def notice(text: str, *, tenant=None, user=None, roles=None, category="system") -> StoredEvent:
    """Store an event (as the pipeline does) and number it, as the publisher's claim does."""
    if roles is not None:
        event = Event(
            name="SystemNotification",
            category=category,
            level="info",
            title="Notice",
            message=text,
            data={"tenant_id": tenant.pk, "user_id": None},
            targets=[Target(f"tenant.{tenant.pk}", roles)],
        )
    else:
        event = SystemNotification.create(message=text, tenant=tenant, user=user)
    stored = broadcast(event, exclude=None)
    outbox.claim(limit=1000)
    stored.refresh_from_db()
    return stored


def messages(response) -> list[str]:
    return [item["message"] for item in response.json()["results"]]


@pytest.fixture
def events(tenant, other_tenant, staff, tenant_admin):
    return {
        "old": notice("old news", tenant=tenant),
        "beta": notice("beta only", tenant=other_tenant),
        "admins": notice("admins only", tenant=tenant, roles=("tenant_admin",)),
        "mine": notice("for staff", user=staff),
        "new": notice("fresh", tenant=tenant),
    }


def test_offline_events_are_in_the_inbox_newest_first(api_as, events):
    response = api_as("staff").get(URL)
    assert response.status_code == 200
    assert messages(response) == ["fresh", "for staff", "old news"]
    assert all(item["read"] is False for item in response.json()["results"])


def test_each_user_sees_only_what_was_meant_for_them(api_as, events):
    assert messages(api_as("tenant_admin").get(URL)) == ["fresh", "admins only", "old news"]
    assert messages(api_as("other_admin").get(URL)) == ["beta only"]
    assert messages(api_as("system_admin").get(URL)) == []


def test_category_filter_and_a_bad_category(api_as, tenant, staff):
    notice("a payment", tenant=tenant, roles=("tenant_admin", "staff"), category="payment")
    notice("a system note", tenant=tenant)
    client = api_as("staff")
    assert messages(client.get(URL, {"category": "payment"})) == ["a payment"]
    response = client.get(URL, {"category": "nonsense"})
    assert response.status_code == 400
    assert "category" in response.json()["error"]["fields"]


def test_the_list_is_paginated(api_as, tenant):
    for n in range(30):
        notice(f"n{n}", tenant=tenant)
    body = api_as("staff").get(URL).json()
    assert body["count"] == 30
    assert len(body["results"]) == 25
    assert body["results"][0]["message"] == "n29"


def test_unread_count_mark_read_and_mark_all_read(api_as, events, staff):
    client = api_as("staff")
    assert client.get(URL + "unread-count/").json() == {"unread": 3}

    response = client.post(URL + "read/", {"ids": [events["mine"].id]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"unread": 2}
    read = {item["message"]: item["read"] for item in client.get(URL).json()["results"]}
    assert read == {"fresh": False, "for staff": True, "old news": False}
    # Reading twice changes nothing.
    assert client.post(URL + "read/", {"ids": [events["mine"].id]}, format="json").json() == {
        "unread": 2
    }

    assert client.post(URL + "read-all/").json() == {"unread": 0}
    assert client.get(URL + "unread-count/").json() == {"unread": 0}
    assert NotificationRead.objects.filter(user=staff).count() == 0  # folded into the watermark
    # A new event after "mark all" is unread again.
    notice("later", tenant=staff.tenant)
    assert client.get(URL + "unread-count/").json() == {"unread": 1}
    # The admin's own read state is untouched (fresh, admins only, old news, later).
    assert api_as("tenant_admin").get(URL + "unread-count/").json() == {"unread": 4}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": ["x"]},
        {"ids": [0]},
        {"ids": [2**63]},
        {"ids": 5},
        {"ids": [1], "extra": 1},
    ],
)
def test_bad_mark_read_input_is_refused_and_changes_nothing(api_as, events, body):
    response = api_as("staff").post(URL + "read/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert NotificationRead.objects.count() == 0


def test_marking_someone_elses_notification_is_not_found(api_as, events):
    for key in ("beta", "admins"):
        response = api_as("staff").post(URL + "read/", {"ids": [events[key].id]}, format="json")
        assert response.status_code == 404, key
    assert NotificationRead.objects.count() == 0


def test_anonymous_gets_401(api_as):
    assert api_as("anonymous").get(URL).status_code == 401
    assert api_as("anonymous").post(URL + "read-all/").status_code == 401


def test_a_user_moved_to_another_tenant_no_longer_sees_the_old_inbox(api_as, events, staff):
    type(staff).objects.filter(pk=staff.pk).update(tenant=events["beta"].data["tenant_id"])
    staff.refresh_from_db()
    assert messages(api_as("staff").get(URL)) == ["for staff", "beta only"]


def test_prune_deletes_old_notifications_only(tenant, staff):
    old = notice("ancient", tenant=tenant)
    StoredEvent.objects.filter(pk=old.pk).update(occurred_at=timezone.now() - timedelta(days=91))
    kept = notice("recent", tenant=tenant)
    inbox.mark_read(user=staff, event_ids=[old.id])
    out = StringIO()
    call_command("prune_notifications", stdout=out)
    assert "Deleted 1 notification(s) older than 90 day(s)." in out.getvalue()
    assert list(StoredEvent.objects.values_list("id", flat=True)) == [kept.id]
    assert NotificationRead.objects.count() == 0
    call_command("prune_notifications", "--days", "1", stdout=StringIO())
    assert StoredEvent.objects.count() == 1
    with pytest.raises(CommandError):
        call_command("prune_notifications", "--days", "0")


@committed_db
@pytest.mark.usefixtures("fresh_layer")
async def test_mark_read_syncs_every_socket_of_that_user_only(staff, tenant_admin, tenant):
    event = await database_sync_to_async(notice)("read me", tenant=tenant)
    first, _ = await connect_user(staff)
    second, _ = await connect_user(staff)
    admin, _ = await connect_user(tenant_admin)
    for comm in (first, second, admin):
        await drain(comm)

    await database_sync_to_async(inbox.mark_read)(user=staff, event_ids=[event.id])
    for comm in (first, second):
        frame = await comm.receive_json_from(timeout=3)
        assert frame["event"] == "NotificationRead"
        assert frame["channel"] == f"user.{staff.pk}"
        assert frame["data"] == {"ids": [event.id], "all": False, "unread": 0}

    await database_sync_to_async(inbox.mark_all_read)(user=staff)
    frame = await second.receive_json_from(timeout=3)
    assert frame["data"] == {"ids": [], "all": True, "unread": 0}
    assert await admin.receive_nothing(0.3)  # another user's tabs are not told
    for comm in (first, second, admin):
        await comm.disconnect()
