"""broadcast(): stored in the caller's transaction, published only after commit, toOthers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import pytest
from django.db import connection, connections, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts import services as accounts
from notifications.context import excluding_socket
from notifications.events import broadcast as broadcast_module
from notifications.events import relay as publisher
from notifications.events.broadcast import broadcast
from notifications.events.catalog import SystemAlert, Target, UserCreated
from notifications.middleware import SocketIdMiddleware
from notifications.models import EventTarget, StoredEvent
from tenants import services as tenants
from tests.notifications.conftest import run

pytestmark = pytest.mark.django_db(transaction=True)


async def test_shell_one_liner_reaches_the_group(tenant_admin, staff, listen, deliver):
    listener = await listen(f"tenant.{staff.tenant_id}")
    stored = await run(lambda: broadcast(UserCreated.from_user(staff)))()
    await deliver()
    [message] = await listener.collect()
    assert message["type"] == "notify.event"
    assert message["id"] == stored.id
    assert message["roles"] == ["tenant_admin"]
    assert message["exclude"] is None
    frame = json.loads(message["text"])
    assert list(frame) == [
        "type",
        "id",
        "event",
        "category",
        "level",
        "title",
        "message",
        "titles",  # the other languages' texts (docs/protocol.md), after every older field
        "messages",
        "channel",
        "data",
        "occurred_at",
    ]
    assert set(frame["titles"]) == set(frame["messages"]) == {"sw", "fr"}
    assert frame["type"] == "event" and frame["id"] == stored.id
    assert frame["channel"] == f"tenant.{staff.tenant_id}"
    assert frame["occurred_at"].endswith("Z")


async def test_each_group_gets_its_own_channel_in_the_frame(tenant, listen, deliver):
    tenant_listener = await listen(f"tenant.{tenant.pk}")
    admin_listener = await listen("system.admin")
    await run(tenants.tenant_suspend)(tenant=tenant, reason="Unpaid", by=None)
    await deliver()
    [(_, to_tenant)] = await tenant_listener.events()
    [(_, to_admins)] = await admin_listener.events()
    assert to_tenant["id"] == to_admins["id"]
    assert (to_tenant["channel"], to_admins["channel"]) == (f"tenant.{tenant.pk}", "system.admin")
    assert to_tenant["data"]["reason"] == "Unpaid"


async def test_rolled_back_change_emits_nothing(tenant, listen, deliver):
    listener = await listen(f"tenant.{tenant.pk}", "system.admin")

    def suspend_then_fail():
        with transaction.atomic():
            tenants.tenant_suspend(tenant=tenant, reason="Unpaid", by=None)
            raise RuntimeError("something later in the request failed")

    with pytest.raises(RuntimeError):
        await run(suspend_then_fail)()
    await deliver()
    assert await listener.collect() == []
    assert await run(StoredEvent.objects.count)() == 0


async def test_published_only_after_commit(tenant, listen, deliver):
    listener = await listen(f"tenant.{tenant.pk}")
    seen_before_commit = []

    def suspend_and_look():
        with transaction.atomic():
            tenants.tenant_suspend(tenant=tenant, reason="Unpaid", by=None)
            # Still inside the transaction: stored (in it) but nothing published.
            seen_before_commit.append(StoredEvent.objects.get().published_at)

    await run(suspend_and_look)()
    assert seen_before_commit == [None]
    await deliver()
    assert [name for name, _ in await listener.events()] == ["TenantSuspended"]
    assert await run(lambda: StoredEvent.objects.get().published_at is not None)()


async def test_savepoint_rollback_drops_only_its_events(tenant, listen, deliver):
    listener = await listen(f"tenant.{tenant.pk}")

    def outer():
        with transaction.atomic():
            tenants.tenant_update(tenant=tenant, data={"name": "Kept"}, by=None)
            try:
                with transaction.atomic():
                    tenants.tenant_suspend(tenant=tenant, reason="x", by=None)
                    raise ValueError
            except ValueError:
                pass

    await run(outer)()
    await deliver()
    # TenantUpdated goes to tenant admins only; the suspension was rolled back.
    assert [name for name, _ in await listener.events()] == ["TenantUpdated"]


@pytest.mark.postgres
async def test_a_failed_broadcast_fails_the_callers_transaction(tenant, listen, deliver):
    """No savepoint of its own (one statement on PostgreSQL): a change never commits without
    its event, even if the caller swallows the error."""
    from django.db import DatabaseError

    from notifications.events.catalog import Target

    listener = await listen(f"tenant.{tenant.pk}")

    def change_then_bad_event():
        with transaction.atomic():
            tenants.tenant_update(tenant=tenant, data={"name": "Not kept"}, by=None)
            event = SystemAlert.create(tenant=tenant, message="x")
            event.targets = [Target("g" * 150)]  # longer than EventTarget.group allows
            with pytest.raises(DatabaseError):
                broadcast(event)

    await run(change_then_bad_event)()
    await deliver()
    assert await listener.collect() == []
    assert await run(StoredEvent.objects.count)() == 0
    await run(tenant.refresh_from_db)()
    assert tenant.name == "Acme WiFi"


async def test_the_stored_row_holds_the_event_and_its_targets(staff):
    """What broadcast() writes (one statement on PostgreSQL, the ORM elsewhere) reads back
    as the event: texts, translations, payload, targets with their roles."""
    event = UserCreated.from_user(staff)
    stored = await run(lambda: broadcast(event, exclude="12.34"))()

    def read():
        row = StoredEvent.objects.get(pk=stored.pk)
        return row, [(t.group, t.roles) for t in row.targets.order_by("id")]

    row, targets = await run(read)()
    assert (row.name, row.title, row.message) == (event.name, event.title, event.message)
    assert row.translations == event.translations and set(row.translations) == {"sw", "fr"}
    assert row.data == event.data and row.exclude_socket_id == "12.34"
    assert row.occurred_at == event.occurred_at and row.uuid == stored.uuid
    assert row.position is None and row.published_at is None and row.publish_attempts == 0
    assert targets == [(t.group, list(t.roles) if t.roles else None) for t in event.targets]


@pytest.fixture
def server_side_binding(monkeypatch):
    """broadcast() on a PostgreSQL connection with OPTIONS server_side_binding (psycopg sends
    the parameters apart from the statement: at most 65,535 of them, and a prepared plan per
    statement text), as an operator may configure it."""
    settings_dict = {**connection.settings_dict}
    settings_dict["OPTIONS"] = {**settings_dict.get("OPTIONS", {}), "server_side_binding": True}
    bound = connections["default"].__class__(settings_dict)  # autocommit: each commits at once
    monkeypatch.setattr(broadcast_module, "connection", bound)
    yield bound
    bound.close()


@pytest.mark.postgres  # the single-statement insert is PostgreSQL's
def test_an_event_to_tens_of_thousands_of_groups_is_one_statement(staff, server_side_binding):
    """40,000 targets (80,000 values: past the 65,535 bind parameters, where a statement with a
    VALUES row per target failed) are stored by one statement, the same as for one target."""
    event = UserCreated.from_user(staff)
    many = [Target(f"user.{i}", ("tenant_admin",) if i % 2 else None) for i in range(40_000)]
    with CaptureQueriesContext(server_side_binding) as one:
        broadcast(dataclasses.replace(event, targets=event.targets[:1]))
    with CaptureQueriesContext(server_side_binding) as big:
        stored = broadcast(dataclasses.replace(event, targets=many))
    statements = [[q["sql"] for q in c if q["sql"] not in ("BEGIN", "COMMIT")] for c in (one, big)]
    assert [len(s) for s in statements] == [1, 1]
    rows = EventTarget.objects.filter(event_id=stored.pk).order_by("id")
    targets = list(rows.values_list("group", "roles"))
    assert targets == [(t.group, list(t.roles) if t.roles else None) for t in many]


@pytest.fixture
def redis_layer(settings, redis_url):
    """The product's Redis layer, whatever REDIS_URL this pass has (its own key prefix)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "notifications.realtime.layers.FanoutChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"bcast-{uuid.uuid4().hex[:8]}"},
        }
    }


@pytest.fixture
def local_layer(settings):
    """The embedded default's process-local layer, whatever this pass configures."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "notifications.realtime.layers.LocalFanoutChannelLayer"}
    }


async def test_the_request_only_wakes_its_process_publisher(redis_layer, settings, tenant, listen):
    """Publishing is not the request's work (issue 16): with no publisher in this process the
    row waits for a server's; with one, the commit wakes it and it sends the event."""
    assert publisher.layer_crosses_processes()
    listener = await listen(f"tenant.{tenant.pk}")
    await run(tenants.tenant_suspend)(tenant=tenant, reason="Unpaid", by=None)
    assert await run(lambda: StoredEvent.objects.get().publish_attempts)() == 0
    settings.NOTIFICATIONS_POLL_SECONDS = 60  # no poll within the test: only the wake
    publisher.ensure_started()  # its first round sends the waiting row
    try:
        events = []
        async with asyncio.timeout(10):
            while not events:
                events += await listener.events()
                await asyncio.sleep(0.02)
        await run(tenants.tenant_update)(tenant=tenant, data={"name": "Acme 2"}, by=None)
        async with asyncio.timeout(10):
            while len(events) < 2:
                events += await listener.events()
                await asyncio.sleep(0.02)
        # The frame can arrive before the publisher's settle (it follows the send): stopping
        # the publisher in between would leave the row to its lease, not unsent.
        unpublished = StoredEvent.objects.filter(published_at__isnull=True).exists
        async with asyncio.timeout(10):
            while await run(unpublished)():
                await asyncio.sleep(0.02)
    finally:
        await publisher.stop()
    assert [name for name, _ in events] == ["TenantSuspended", "TenantUpdated"]


@pytest.mark.postgres
@pytest.mark.live
async def test_a_shell_commit_wakes_the_server_publisher_by_notify(listen):
    """A `manage.py shell` runs no publisher: its NOTIFY (sent at its commit) wakes the server's
    at once, long before that publisher's next poll."""
    from tests.liveserver import run_shell, server_env

    listener = await listen("system.admin")
    started = publisher.Publisher(interval=60)
    started.start(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(10):
            while not started.listening:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # the first round (woken by LISTEN itself) is over
        code = (
            "from notifications.events.broadcast import broadcast\n"
            "from notifications.events.catalog import SystemNotification\n"
            "print(broadcast(SystemNotification.create(message='from a shell')).pk)\n"
        )
        out = await asyncio.to_thread(run_shell, server_env(redis_url=None), code)
        event_id = int(out.strip().splitlines()[-1])
        messages = []
        async with asyncio.timeout(20):  # far below the 60 s poll
            while not messages:
                messages = await listener.collect()
                await asyncio.sleep(0.05)
    finally:
        await started.stop()
    assert [m["id"] for m in messages] == [event_id]


async def test_in_memory_layer_leaves_it_for_the_server(local_layer, tenant):
    assert not publisher.layer_crosses_processes()
    await run(tenants.tenant_suspend)(tenant=tenant, reason="Unpaid", by=None)
    assert await run(lambda: StoredEvent.objects.get().published_at)() is None


# --- toOthers --------------------------------------------------------------------------------


def _request_with(header: str | None):
    factory = RequestFactory()
    extra = {"HTTP_X_SOCKET_ID": header} if header is not None else {}
    return factory.post("/tenants/acme/suspend/", **extra)


async def test_x_socket_id_excludes_the_senders_socket(tenant, listen, deliver):
    listener = await listen(f"tenant.{tenant.pk}")

    def view(request):
        tenants.tenant_suspend(tenant=tenant, reason="Unpaid", by=None)
        return "ok"

    response = await run(SocketIdMiddleware(view))(_request_with("123456.7891011"))
    assert response == "ok"
    await deliver()
    [message] = await listener.collect()
    assert message["exclude"] == "123456.7891011"
    assert await run(lambda: StoredEvent.objects.get().exclude_socket_id)() == "123456.7891011"


async def test_x_socket_id_does_not_leak_into_the_next_request(tenant, listen, deliver):
    listener = await listen(f"tenant.{tenant.pk}")
    middleware = SocketIdMiddleware(lambda request: "ok")
    await run(middleware)(_request_with("1.2"))
    await run(lambda: broadcast(SystemAlert.create(message="hi", tenant=tenant)))()
    await deliver()
    [message] = await listener.collect()
    assert message["exclude"] is None


@pytest.mark.parametrize("header", ["", "abc", "1.2.3", "12345", "1.2; drop", "9" * 30 + ".1"])
async def test_malformed_x_socket_id_is_ignored(tenant, listen, deliver, header):
    listener = await listen(f"tenant.{tenant.pk}")

    def view(request):
        tenants.tenant_suspend(tenant=tenant, reason="Unpaid", by=None)
        return "ok"

    assert await run(SocketIdMiddleware(view))(_request_with(header)) == "ok"
    await deliver()
    [message] = await listener.collect()
    assert message["exclude"] is None  # nobody is excluded; the change still happened


async def test_async_views_get_the_socket_id_too(tenant):
    seen = []

    async def view(request):
        from notifications.context import current_socket_id

        seen.append(current_socket_id.get())
        return "ok"

    assert await SocketIdMiddleware(view)(_request_with("42.7")) == "ok"
    assert seen == ["42.7"]


async def test_excluding_socket_for_code_outside_requests(staff, listen, deliver):
    listener = await listen(f"user.{staff.pk}")

    def change():
        with excluding_socket("5.6"):
            accounts.user_change_password(user=staff, new_password="N3w-Secret-pw!", by=staff)

    await run(change)()
    await deliver()
    messages = await listener.collect()
    # the password change also makes the user's sockets re-check their credentials
    assert [m["type"] for m in messages if m["type"] != "notify.event"] == ["notify.recheck"]
    [message] = [m for m in messages if m["type"] == "notify.event"]
    assert message["exclude"] == "5.6"
