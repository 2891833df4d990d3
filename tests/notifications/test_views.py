"""The system admins' live-events page: stored system.admin events only, escaped, admins only."""

from __future__ import annotations

import pytest

from accounts.services import user_create
from notifications.events.broadcast import broadcast
from notifications.events.catalog import SystemAlert

pytestmark = pytest.mark.django_db


def test_system_feed_lists_system_events_not_tenant_events(client, system_admin, tenant):
    broadcast(SystemAlert.create(title="Disk <b>full</b>", message="93% used"))
    user_create(
        username="tenant-only",
        password="Pw-long-enough-1",
        role="staff",
        tenant=tenant,
        first_name="Tenant",
        last_name="Only",
        by=None,
    )
    client.force_login(system_admin)
    html = client.get("/system/events/").content.decode()
    assert 'id="system-feed"' in html and 'data-live-feed="system.admin"' in html
    assert 'data-event="SystemAlert"' in html and "Disk &lt;b&gt;full&lt;/b&gt;" in html
    assert 'data-event="UserCreated"' not in html


def test_system_feed_is_for_system_admins_only(client, tenant_admin):
    client.force_login(tenant_admin)
    assert client.get("/system/events/").status_code == 403


def test_toast_map_on_every_signed_in_page_comes_from_the_catalog(client, tenant_admin):
    import json

    from notifications.events.catalog import CATALOG

    client.force_login(tenant_admin)
    html = client.get("/users/").content.decode()
    raw = html.split('<script id="notifications-config" type="application/json">')[1]
    config = json.loads(raw.split("</script>")[0])
    assert config["live"] is True and config["max_visible"] == 5
    assert set(config["events"]) == set(CATALOG)
    durations = {name: e["duration_ms"] for name, e in config["events"].items()}
    long = {"AccountSuspended", "TenantRegistered", "SystemAlert", "PlatformAnnouncement"}
    assert {n for n, ms in durations.items() if ms == 8000} == long
    by_level = {"success": 5000, "info": 5000, "warning": 6000, "error": 7000}
    for name, entry in config["events"].items():
        if name not in long:
            assert entry["duration_ms"] == by_level[entry["level"]], name
