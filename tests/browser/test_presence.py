"""Who is online, in a real browser: the dashboard list, the system admins' counts, the edit notice.

The people here belong to a tenant of this module's own ("presence-co"), so the sockets of other
browser tests (which linger NOTIFICATIONS_PRESENCE_GRACE, 3 s, after their pages close) never
move these lists and counts. A guest (a name with markup in it) signs in and leaves in a second
browser context; the pages of the first context follow live, without a reload.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.live import PASSWORD, wait_connected, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

XSS = "<img src=x onerror=alert(1)>"
GUEST = "pres-guest"

MAKE_PEOPLE = f"""
from accounts.models import User
from accounts.services import user_create
from tenants.models import Tenant
from tenants.services import tenant_create
tenant = Tenant.objects.filter(slug="presence-co").first() or tenant_create(
    name="Presence Co", slug="presence-co", contact_email="ops@presence.example", by=None)
for username, role, first, last in [
    ("pres-admin", "tenant_admin", "Pia", "Watcher"),
    ("pres-admin2", "tenant_admin", "Second", "Watcher"),
    ({GUEST!r}, "staff", {XSS!r}, "Guest"),
    ("pres-other", "staff", "Olive", "Other"),
]:
    user = User.objects.filter(username=username).first() or user_create(
        username=username, password={PASSWORD!r}, role=role, tenant=tenant, first_name=first,
        last_name=last, by=None)
    print("USER", username, user.pk)
"""


@pytest.fixture(scope="module")
def people(live_server_proc) -> dict[str, int]:
    """username → id of this module's own tenant's people."""
    out = live_server_proc.manage("shell", "-c", MAKE_PEOPLE)
    found = {name: int(pk) for name, pk in re.findall(r"USER (\S+) (\d+)", out)}
    assert len(found) == 4, out
    return found


def wait_text(page, selector: str, value: int | str, timeout: float = 10_000) -> None:
    """Wait for an element's text (leaving takes the grace, 3 s on the live server)."""
    wait_for(
        page,
        "([sel, value]) => { const el = document.querySelector(sel);"
        " return !!el && el.textContent.trim() === String(value); }",
        arg=[selector, value],
        timeout=timeout,
    )


def test_dashboard_online_list_follows_a_colleague_signing_in_and_leaving(new_page, server, people):
    admin = new_page("pres-admin")  # lands on the dashboard
    wait_text(admin, "#online-count", 1)  # only me (anyone from before has lapsed)
    assert "(you)" in admin.locator("#online-now").inner_text()
    row = admin.locator(f'#online-now li[data-user-id="{people[GUEST]}"]')
    assert row.count() == 0

    guest = new_page(GUEST)
    row.wait_for(state="attached", timeout=20_000)
    assert XSS in row.inner_text()  # the name is text, never markup
    assert admin.locator("#online-now img").count() == 0
    wait_text(admin, "#online-count", 2)
    # the guest's own dashboard lists them as "(you)", rendered by the server then kept live
    assert "(you)" in guest.locator(f'#online-now li[data-user-id="{people[GUEST]}"]').inner_text()

    guest.context.close()  # the tab closes: gone once the grace for a page change has passed
    row.wait_for(state="detached", timeout=10_000)
    wait_text(admin, "#online-count", 1)
    assert admin.dialogs == []


def test_system_admin_online_count_follows_a_tenant_user(new_page, server, people):
    admin = new_page("sysadmin")
    admin.goto(f"{server.url}/system/tenants/")
    wait_connected(admin)
    cell = '#tenant-table tr[data-tenant="presence-co"] td[data-online-tenant]'
    wait_text(admin, cell, 0)  # nobody of the tenant (earlier tests' pages have lapsed)

    guest = new_page(GUEST)
    wait_text(admin, cell, 1)
    guest.context.close()
    wait_text(admin, cell, 0)


def test_edit_page_names_the_other_admin_editing_the_same_user(new_page, server, people):
    edit = f"{server.url}/users/{people[GUEST]}/edit/"
    first = new_page("pres-admin")
    first.goto(edit)
    wait_connected(first)
    notice = first.locator("#viewers-notice")
    assert notice.get_attribute("data-view-record") == f"user.{people[GUEST]}"
    first.wait_for_timeout(300)  # the first "viewers" frame: nobody else
    assert notice.is_hidden()

    second = new_page("pres-admin2")
    second.goto(edit)
    wait_connected(second)
    notice.wait_for(state="visible", timeout=20_000)
    assert notice.inner_text() == "Second Watcher (pres-admin2) is also editing this user."
    theirs = second.locator("#viewers-notice")
    theirs.wait_for(state="visible", timeout=20_000)
    assert theirs.inner_text() == "Pia Watcher (pres-admin) is also editing this user."

    second.context.close()
    notice.wait_for(state="hidden", timeout=10_000)
    assert first.dialogs == []


def test_django_admin_and_the_edit_page_see_each_other(new_page, server, people):
    record = people["pres-other"]  # a record no other test opens
    sysadmin = new_page("sysadmin")
    sysadmin.goto(f"{server.url}/admin/accounts/user/{record}/change/")
    wait_connected(sysadmin)
    in_admin = sysadmin.locator("#viewers-notice")
    sysadmin.wait_for_timeout(300)  # the first "viewers" frame: nobody else
    assert in_admin.is_hidden()
    tenant_admin = new_page("pres-admin")
    tenant_admin.goto(f"{server.url}/users/{record}/edit/")
    wait_connected(tenant_admin)

    in_admin.wait_for(state="visible", timeout=20_000)
    assert in_admin.inner_text() == "Pia Watcher (pres-admin) is also editing this user."
    on_page = tenant_admin.locator("#viewers-notice")
    on_page.wait_for(state="visible", timeout=20_000)
    assert on_page.inner_text() == "System Admin (sysadmin) is also editing this user."
    tenant_admin.context.close()
    in_admin.wait_for(state="hidden", timeout=10_000)
