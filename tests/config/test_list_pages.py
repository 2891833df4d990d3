"""Every list page pages its rows (25 a page) and says how many there are; roles show labels."""

from __future__ import annotations

import re

import pytest

from hotspot.models import HotspotUser
from notifications.events import relay as publisher
from notifications.events.broadcast import broadcast
from notifications.events.catalog import PaymentCompleted
from tests.factories import (
    HotspotUserFactory,
    PackageFactory,
    PaymentFactory,
    TenantFactory,
    TenantStaffFactory,
)


def rows(html: str, table_id: str) -> int:
    body = html.split(f'id="{table_id}"', 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr") - 1  # the header row


def count_text(html: str) -> str:
    return re.search(r"data-page-count[^>]*>([^<]*)<", html).group(1).strip()


def test_hotspot_users_page_through_all_rows_with_a_count(client, tenant_admin, package):
    HotspotUserFactory.create_batch(230, package=package)
    client.force_login(tenant_admin)
    first = client.get("/hotspot-users/").content.decode()
    assert rows(first, "hotspot-user-table") == 25
    assert count_text(first) == "1–25 of 230 hotspot users"
    assert "Page 1 of 10" in first
    last = client.get("/hotspot-users/?page=10").content.decode()
    assert rows(last, "hotspot-user-table") == 5  # the rows past 200 are reachable
    assert count_text(last) == "226–230 of 230 hotspot users"
    assert 'rel="prev" href="?page=9"' in last and 'rel="next"' not in last


def test_pages_keep_the_filters(client, tenant_admin, package):
    HotspotUserFactory.create_batch(30, package=package, status=HotspotUser.Status.EXPIRED)
    HotspotUserFactory.create_batch(3, package=package)
    client.force_login(tenant_admin)
    html = client.get("/hotspot-users/?status=expired&q=hs").content.decode()
    assert count_text(html) == "1–25 of 30 hotspot users"
    assert 'href="?status=expired&amp;q=hs&amp;page=2"' in html


def test_a_page_number_out_of_range_or_garbage_shows_a_real_page(client, tenant_admin, package):
    PaymentFactory.create_batch(30, package=package)
    client.force_login(tenant_admin)
    assert count_text(client.get("/payments/?page=99").content.decode()).startswith("26–30 of 30")
    assert count_text(client.get("/payments/?page=x%3Cb").content.decode()).startswith("1–25 of 30")


@pytest.mark.parametrize(
    ("url", "table", "noun", "make"),
    [
        ("/users/", "user-table", "users", "users"),
        ("/packages/", "package-table", "packages", "packages"),
        ("/payments/", "payment-table", "payments", "payments"),
    ],
)
def test_tenant_lists_are_paged(client, tenant_admin, tenant, url, table, noun, make):
    if make == "users":
        TenantStaffFactory.create_batch(29, tenant=tenant)  # + the admin: 30
    elif make == "packages":
        PackageFactory.create_batch(30, tenant=tenant)
    else:
        PaymentFactory.create_batch(30, package=PackageFactory(tenant=tenant))
    client.force_login(tenant_admin)
    html = client.get(url).content.decode()
    assert rows(html, table) == 25 and count_text(html) == f"1–25 of 30 {noun}"
    assert rows(client.get(f"{url}?page=2").content.decode(), table) == 5


def test_system_tenants_are_paged(client, system_admin):
    TenantFactory.create_batch(27)
    client.force_login(system_admin)
    html = client.get("/system/tenants/").content.decode()
    assert rows(html, "tenant-table") == 25 and count_text(html) == "1–25 of 27 tenants"


def test_other_tenants_rows_are_not_counted(client, tenant_admin, other_tenant):
    HotspotUserFactory.create_batch(3, package=PackageFactory(tenant=other_tenant))
    client.force_login(tenant_admin)
    assert count_text(client.get("/hotspot-users/").content.decode()) == "0 hotspot users"


def test_roles_show_their_labels(client, tenant_admin, staff):
    client.force_login(tenant_admin)
    users = client.get("/users/").content.decode()
    table = users.split('id="user-table"', 1)[1]
    assert "Tenant admin" in table and "Staff" in table
    assert "tenant_admin" not in table
    dashboard = client.get("/").content.decode()
    assert "tenant_admin" not in re.sub(r'data-role-labels="[^"]*"', "", dashboard)


def test_inbox_item_links_to_its_record_and_read_differs_from_unread(client, tenant_admin, package):
    payment = PaymentFactory(package=package, provider_reference="QK7ABC123")
    stored = broadcast(PaymentCompleted.from_payment(payment), exclude=None)
    publisher.claim(limit=1000)
    client.force_login(tenant_admin)
    html = client.get("/notifications/").content.decode()
    item = re.search(rf'<li[^>]*data-event-id="{stored.id}"[^>]*>', html).group(0)
    assert 'data-read="0"' in item and 'data-record-url="/payments/?q=QK7ABC123"' in item
    assert "inbox-new" in html

    response = client.post(f"/notifications/{stored.id}/read/", {"next": "/payments/?q=QK7ABC123"})
    assert response.status_code == 302 and response["Location"] == "/payments/?q=QK7ABC123"
    item = re.search(
        rf'<li[^>]*data-event-id="{stored.id}"[^>]*>',
        client.get("/notifications/").content.decode(),
    ).group(0)
    assert 'data-read="1"' in item
