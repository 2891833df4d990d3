"""Routers and the "Online on the hotspot" card in a real browser (issue 14)."""

from __future__ import annotations

import pytest

from tests.browser.live import wait_connected, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

START_SESSION = """
from hotspot import radius
from hotspot.models import Router
router = Router.objects.get(address="198.51.100.77")
radius.account(router_id=router.pk, data={
    "Acct-Status-Type": "Start", "Acct-Session-Id": "BROWSER1", "User-Name": "walk-in",
    "Calling-Station-Id": "AA-BB-CC-DD-EE-01",
})
"""


def test_admin_adds_a_router_and_the_dashboard_counts_its_session_live(new_page, server):
    page = new_page("acme-admin")
    page.goto(f"{server.url}/routers/new/")
    page.fill("#id_name", "Gate <b>7</b>")
    page.fill("#id_address", "198.51.100.77")
    page.fill("#id_secret", "browser-secret")
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{server.url}/routers/")
    row = page.locator("#router-table tbody tr", has_text="Gate <b>7</b>")
    assert row.count() == 1 and "198.51.100.77" in row.inner_text()
    assert page.dialogs == []

    page.goto(f"{server.url}/")
    wait_connected(page)
    count = page.locator("#hotspot-online-count")
    before = int(count.get_attribute("data-value"))
    server.manage("shell", "-c", START_SESSION)
    wait_for(
        page,
        f"document.querySelector('#hotspot-online-count').dataset.value === '{before + 1}'",
        timeout=30_000,
    )
    page.goto(f"{server.url}/hotspot-sessions/")
    assert "walk-in" in page.locator("#hotspot-session-table").inner_text()


def test_staff_read_routers_on_a_phone(new_page, server):
    page = new_page("acme-staff", width=360, height=740)
    page.goto(f"{server.url}/routers/")
    assert page.locator("#router-table").is_visible()
    assert page.locator("#router-table form").count() == 0
    assert page.get_by_text("Add router").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
