"""Who is online, in a real browser: the dashboard list, the system admins' counts, the edit notice.

A guest user of this module's own (a name with markup in it) signs in and leaves in a second
browser context; the pages of the first context follow live, without a reload.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.live import PASSWORD, wait_connected

pytestmark = [pytest.mark.browser, pytest.mark.live]

XSS = "<img src=x onerror=alert(1)>"
GUEST = "acme-presence"

MAKE_GUEST = f"""
from accounts.models import User
from accounts.services import user_create
from tenants.models import Tenant
guest = User.objects.filter(username={GUEST!r}).first() or user_create(
    username={GUEST!r}, password={PASSWORD!r}, role="staff", tenant=Tenant.objects.get(slug="acme"),
    first_name={XSS!r}, last_name="Guest", by=None)
print("GUEST", guest.pk)
"""


@pytest.fixture(scope="module")
def guest_id(live_server_proc) -> int:
    """A staff user only this module signs in with (so no other test's socket is theirs)."""
    found = re.search(r"GUEST (\d+)", live_server_proc.manage("shell", "-c", MAKE_GUEST))
    assert found
    return int(found[1])


def online_count(page) -> int:
    return int(page.locator("#online-count").get_attribute("data-count"))


def wait_count(page, selector: str, value: int, timeout: float = 10_000) -> None:
    """Leaving takes up to NOTIFICATIONS_PRESENCE_GRACE (3 s on the live server): page changes
    are not leaving."""
    page.wait_for_function(
        "([sel, value]) => document.querySelector(sel).textContent.trim() === String(value)",
        arg=[selector, value],
        timeout=timeout,
    )


def test_dashboard_online_list_follows_a_colleague_signing_in_and_leaving(
    new_page, server, guest_id
):
    admin = new_page("acme-admin")  # lands on the dashboard
    admin.wait_for_function("document.getElementById('online-now').dataset.refreshedAt")
    assert "(you)" in admin.locator("#online-now").inner_text()
    before = online_count(admin)
    row = admin.locator(f'#online-now li[data-user-id="{guest_id}"]')
    assert row.count() == 0

    guest = new_page(GUEST)
    row.wait_for(state="attached", timeout=5000)
    assert XSS in row.inner_text()  # the name is text, never markup
    assert admin.locator("#online-now img").count() == 0
    wait_count(admin, "#online-count", before + 1)
    # the guest's own dashboard lists them as "(you)", rendered by the server then kept live
    assert "(you)" in guest.locator(f'#online-now li[data-user-id="{guest_id}"]').inner_text()

    guest.context.close()  # the tab closes: gone once the grace for a page change has passed
    row.wait_for(state="detached", timeout=10_000)  # after the grace (3 s)
    wait_count(admin, "#online-count", before)
    assert admin.dialogs == []


def test_system_admin_online_count_follows_a_tenant_user(new_page, server, guest_id):
    admin = new_page("sysadmin")
    admin.goto(f"{server.url}/system/tenants/")
    wait_connected(admin)
    cell = '#tenant-table tr[data-tenant="acme"] td[data-online-tenant]'
    admin.wait_for_selector(cell)
    admin.wait_for_timeout(300)  # the presence_counts frame after welcome
    before = int(admin.locator(cell).inner_text())

    guest = new_page(GUEST)
    wait_count(admin, cell, before + 1)
    guest.context.close()
    wait_count(admin, cell, before)


def test_edit_page_names_the_other_admin_editing_the_same_user(new_page, server, guest_id):
    edit = f"{server.url}/users/{guest_id}/edit/"
    first = new_page("acme-admin")
    first.goto(edit)
    wait_connected(first)
    notice = first.locator("#viewers-notice")
    assert notice.get_attribute("data-view-record") == f"user.{guest_id}"
    first.wait_for_timeout(300)  # the first "viewers" frame: nobody else
    assert notice.is_hidden()

    second = new_page("acme-admin2")
    second.goto(edit)
    wait_connected(second)
    notice.wait_for(state="visible", timeout=5000)
    assert notice.inner_text() == "Second Admin (acme-admin2) is also editing this user."
    theirs = second.locator("#viewers-notice")
    theirs.wait_for(state="visible", timeout=5000)
    assert theirs.inner_text() == "Amina Otieno (acme-admin) is also editing this user."

    second.context.close()
    notice.wait_for(state="hidden", timeout=10_000)
    assert first.dialogs == []


def test_django_admin_and_the_edit_page_see_each_other(new_page, server, guest_id):
    sysadmin = new_page("sysadmin")
    sysadmin.goto(f"{server.url}/admin/accounts/user/{guest_id}/change/")
    wait_connected(sysadmin)
    in_admin = sysadmin.locator("#viewers-notice")
    sysadmin.wait_for_timeout(300)  # the first "viewers" frame: nobody else
    assert in_admin.is_hidden()
    tenant_admin = new_page("acme-admin")
    tenant_admin.goto(f"{server.url}/users/{guest_id}/edit/")
    wait_connected(tenant_admin)

    in_admin.wait_for(state="visible", timeout=5000)
    assert in_admin.inner_text() == "Amina Otieno (acme-admin) is also editing this user."
    on_page = tenant_admin.locator("#viewers-notice")
    on_page.wait_for(state="visible", timeout=5000)
    assert on_page.inner_text() == "System Admin (sysadmin) is also editing this user."
    tenant_admin.context.close()
    in_admin.wait_for(state="hidden", timeout=10_000)
