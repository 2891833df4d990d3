"""Who is online, as the pages render it first: the dashboard's list, the system admins' counts.

The live updates (frames) are proven in tests/notifications/test_presence_live.py and
tests/browser/test_presence.py; here the server-side render, which works with JavaScript off.
"""

from __future__ import annotations

import re
import time

import pytest
from django.test import override_settings

from notifications.realtime import presence
from tests.factories import TenantAdminFactory, TenantStaffFactory

pytestmark = pytest.mark.django_db

XSS = "<img src=x onerror=alert(1)>"


def online(user, conn: str | None = None) -> None:
    """`user` has a page open (one socket entry in their tenant), as the consumer records it."""
    presence.get_store().join(
        presence.tenant_scope(user.tenant_id),
        [(conn or f"conn-{user.pk}", presence.member_info(user))],
    )


def listed_ids(html: str) -> list[int]:
    box = re.search(r'<ul[^>]*id="online-now".*?</ul>', html, re.S)
    assert box, "the dashboard has no #online-now list"
    return [int(pk) for pk in re.findall(r'data-user-id="(\d+)"', box[0])]


def online_count(html: str) -> int:
    found = re.search(r'id="online-count"[^>]*>(\d+)<', html)
    assert found, "the dashboard has no #online-count"
    return int(found[1])


def test_dashboard_lists_the_people_online_in_the_tenant_and_the_viewer(
    client, tenant_admin, staff, other_admin
):
    online(staff, "tab-1")
    online(staff, "tab-2")  # two tabs: one person
    online(other_admin)  # another tenant: never listed
    client.force_login(tenant_admin)
    html = client.get("/").content.decode()
    assert sorted(listed_ids(html)) == sorted([tenant_admin.pk, staff.pk])
    assert online_count(html) == 2
    assert f'data-presence-channel="tenant.{tenant_admin.tenant_id}"' in html
    assert other_admin.username not in html
    assert "(you)" in html


def test_dashboard_with_nobody_else_online_lists_the_viewer_alone(client, staff):
    client.force_login(staff)
    html = client.get("/").content.decode()
    assert listed_ids(html) == [staff.pk]
    assert online_count(html) == 1


@override_settings(NOTIFICATIONS_PRESENCE_TTL=0.05)
def test_dashboard_leaves_out_an_entry_whose_heartbeat_stopped(client, tenant_admin, staff):
    online(staff)
    time.sleep(0.1)  # the entry lapsed (its server process died and no longer refreshes it)
    client.force_login(tenant_admin)
    assert listed_ids(client.get("/").content.decode()) == [tenant_admin.pk]


def test_dashboard_escapes_names(client, tenant, tenant_admin):
    evil = TenantStaffFactory(tenant=tenant, username="evil-staff", first_name=XSS, last_name="")
    online(evil)
    client.force_login(tenant_admin)
    html = client.get("/").content.decode()
    assert evil.pk in listed_ids(html)
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_system_tenants_page_shows_online_counts_per_tenant(
    client, system_admin, tenant, other_tenant, tenant_admin, staff
):
    online(staff, "a")
    online(staff, "b")
    online(tenant_admin)
    client.force_login(system_admin)
    html = client.get("/system/tenants/").content.decode()
    cells = {int(k): int(v) for k, v in re.findall(r'data-online-tenant="(\d+)">(\d+)<', html)}
    assert cells == {tenant.pk: 2, other_tenant.pk: 0}
    assert 'data-presence-channel="system.admin"' in html
    assert ">Online</th>" in html


def test_system_tenants_page_renders_when_the_presence_store_fails(
    client, system_admin, tenant, monkeypatch
):
    def broken(*args, **kwargs):
        raise ConnectionError("presence store down")

    monkeypatch.setattr(presence, "online_counts", broken)
    client.force_login(system_admin)
    response = client.get("/system/tenants/")
    assert response.status_code == 200
    assert f'data-online-tenant="{tenant.pk}">0<' in response.content.decode()


def test_admin_tenant_changelist_has_an_online_column(sysadmin_client, tenant, tenant_admin):
    online(tenant_admin)
    TenantAdminFactory(tenant=tenant, username="acme-admin-2")
    html = sysadmin_client.get("/admin/tenants/tenant/").content.decode()
    assert "column-online" in html
    assert re.search(r"<td class=\"field-online\">1</td>", html)


def test_admin_tenant_changelist_reads_presence_once_for_all_rows(
    sysadmin_client, tenant, other_tenant, tenant_admin, monkeypatch
):
    online(tenant_admin)
    calls = []
    real = presence.online_counts

    def counting(tenant_ids):
        calls.append(list(tenant_ids))
        return real(tenant_ids)

    monkeypatch.setattr(presence, "online_counts", counting)
    html = sysadmin_client.get("/admin/tenants/tenant/").content.decode()
    assert len(calls) == 1 and set(calls[0]) == {tenant.pk, other_tenant.pk}
    assert re.search(r"<td class=\"field-online\">1</td>", html)
    assert re.search(r"<td class=\"field-online\">0</td>", html)
