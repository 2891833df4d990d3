"""Platform announcements: a system admin's notice reaches every active tenant's users (and the
system admins), from /system/announce/ or `fire_event ... --all-tenants`; anyone else is refused
and nothing is sent."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from config.errors import PermissionDenied
from notifications import announcements, inbox
from notifications.models import StoredEvent
from tests.factories import TenantAdminFactory, TenantFactory
from tests.notifications.conftest import run


@pytest.mark.django_db(transaction=True)
async def test_every_active_tenants_users_get_it(
    tenant, other_tenant, system_admin, listen, deliver
):
    pending = await run(TenantFactory)(status="pending")
    groups = {
        "A": f"tenant.{tenant.pk}",
        "B": f"tenant.{other_tenant.pk}",
        "sys": "system.admin",
        "pending": f"tenant.{pending.pk}",
    }
    listeners = {key: await listen(group) for key, group in groups.items()}
    await run(announcements.announce)(
        message="Maintenance tonight 22:00–23:00 <b>UTC</b>", title="Maintenance", by=system_admin
    )
    await deliver()
    for key in ("A", "B", "sys"):
        messages = await listeners[key].collect()
        frames = [(json.loads(m["text"]), m["roles"]) for m in messages]
        assert [(f["event"], roles) for f, roles in frames] == [("PlatformAnnouncement", None)], key
        frame = frames[0][0]
        assert frame["title"] == "Maintenance" and frame["category"] == "system"
        assert frame["message"] == "Maintenance tonight 22:00–23:00 <b>UTC</b>"  # text, as sent
        assert frame["data"] == {"by_user_id": system_admin.pk}  # names no tenant
    assert await listeners["pending"].collect() == []


@pytest.mark.django_db(transaction=True)
async def test_it_lands_in_every_tenant_users_inbox(
    tenant_admin, staff, other_admin, system_admin, deliver
):
    stored = await run(announcements.announce)(message="New prices from May", by=system_admin)
    await deliver()  # published: it has its position in the stored order

    def inbox_ids(person):
        return set(inbox.visible_events(person).values_list("pk", flat=True))

    for person in (tenant_admin, staff, other_admin, system_admin):
        assert stored.pk in await run(inbox_ids)(person), person.username


@pytest.mark.django_db
def test_refused_to_anyone_but_system_admins(tenant_admin, staff, client):
    for person in (tenant_admin, staff):
        with pytest.raises(PermissionDenied):
            announcements.announce(message="Free WiFi for all", by=person)
        client.force_login(person)
        assert client.get("/system/announce/").status_code == 403
        response = client.post("/system/announce/", {"message": "Free WiFi", "level": "info"})
        assert response.status_code == 403
    client.logout()
    assert client.post("/system/announce/", {"message": "x", "level": "info"}).status_code in (
        302,
        403,
    )
    assert not StoredEvent.objects.filter(name="PlatformAnnouncement").exists()


@pytest.mark.django_db
def test_the_system_page_sends_it_and_rejects_bad_input(client, system_admin, tenant):
    sysadmin_client = client
    client.force_login(system_admin)
    page = sysadmin_client.get("/system/announce/")
    assert page.status_code == 200 and b'id="announce-form"' in page.content
    for bad in ({"message": "", "level": "info"}, {"message": "x", "level": "loud"}):
        assert sysadmin_client.post("/system/announce/", bad).status_code == 400
    assert not StoredEvent.objects.filter(name="PlatformAnnouncement").exists()
    hostile = "<script>alert(1)</script> down at 22:00"
    response = sysadmin_client.post(
        "/system/announce/", {"title": "", "message": hostile, "level": "warning"}
    )
    assert response.status_code == 302
    event = StoredEvent.objects.get(name="PlatformAnnouncement")
    assert event.level == "warning" and event.title == "Platform Announcement"
    assert event.message == hostile
    html = sysadmin_client.get("/system/announce/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; down at 22:00" in html
    assert "<script>alert(1)" not in html


@pytest.mark.django_db
def test_fire_event_all_tenants(tenant, other_tenant):
    out = StringIO()
    call_command(
        "fire_event", "SystemAlert", "--all-tenants", "--message", "Upgrade at 02:00", stdout=out
    )
    event = StoredEvent.objects.get(name="PlatformAnnouncement")
    assert event.level == "warning" and event.message == "Upgrade at 02:00"
    text = out.getvalue()
    assert f"tenant.{tenant.pk}" in text and f"tenant.{other_tenant.pk}" in text
    assert "system.admin" in text
    call_command("fire_event", "PlatformAnnouncement", "--message", "Hello", stdout=StringIO())
    assert StoredEvent.objects.filter(name="PlatformAnnouncement").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["SystemNotification", "--all-tenants"],  # no message
        ["SystemNotification", "--all-tenants", "--message", "x", "--tenant", "acme-x"],
        ["TenantApproved", "--all-tenants", "--message", "x"],
        ["PlatformAnnouncement", "--message", "x", "--object", "1"],
    ],
)
def test_fire_event_all_tenants_refuses_bad_input(args, tenant):
    TenantAdminFactory(tenant=tenant)
    with pytest.raises(CommandError):
        call_command("fire_event", *args, stdout=StringIO())
    assert not StoredEvent.objects.filter(name="PlatformAnnouncement").exists()
