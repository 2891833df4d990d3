"""Live lists (data-live-rows) in a real browser against a live daphne with the M-Pesa simulator:
a payment's row changes on /payments/ when its callback arrives, in another tab, with no
reload; a new row appears on /hotspot-users/; another tenant's events change nothing; a
filtered page does not take a row outside its filter; what users typed is never rendered as
HTML; the search box's text and the scroll position survive.
"""

from __future__ import annotations

import pytest

from tests.browser.live import sign_in, wait_for
from tests.browser.test_portal import answer_prompt, buy, pages, portal_server, staff_page

pytestmark = [pytest.mark.browser, pytest.mark.live]

__all__ = ["pages", "portal_server"]  # fixtures shared with test_portal.py

WAIT = 30_000


def list_page(pages, server, username, path):
    page = pages(phone=False)
    sign_in(page, server, username)
    page.goto(f"{server.url}{path}")
    page.wait_for_selector("tbody[data-live-rows]")
    page.evaluate(
        """() => { window.__toasts = [];
           new MutationObserver((rs) => rs.forEach((r) => r.addedNodes.forEach((n) =>
             n.dataset && n.dataset.event && window.__toasts.push(n.dataset.event))))
           .observe(document.getElementById('toast-stack'), {childList: true}); }"""
    )
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    wait_for(page, "window.notifications.isConnected()", timeout=WAIT)
    return page


def row_ids(page):
    return page.evaluate(
        "[...document.querySelectorAll('tbody[data-live-rows] tr[data-row-id]')]"
        ".map((r) => r.dataset.rowId)"
    )


def test_a_payment_row_appears_and_completes_live_in_another_tab(pages, portal_server):
    server = portal_server
    admin = list_page(pages, server, "acme-admin", "/payments/")
    admin.fill("input[name=q]", "half-typed")  # the user's own input survives the updates
    failed_only = list_page(pages, server, "acme-staff", "/payments/?status=failed")
    beta = list_page(pages, server, "beta-admin", "/payments/")
    before_admin, before_failed, before_beta = row_ids(admin), row_ids(failed_only), row_ids(beta)

    customer = pages()
    buy(customer, server, "0712000301")
    # A new pending row at the top of acme's list, in place.
    new_id = wait_for(
        admin,
        "(before) => { const r = document.querySelector('tbody[data-live-rows] tr[data-row-id]');"
        " return r && !before.includes(r.dataset.rowId) && r.dataset.status === 'pending'"
        " && r.dataset.rowId; }",
        arg=before_admin,
        timeout=WAIT,
    )
    row = f'tbody[data-live-rows] tr[data-row-id="{new_id}"]'
    assert "Pending" in admin.text_content(row)
    assert "2547****301" in admin.text_content(row)  # masked, as the page renders it

    answer_prompt(pages, server, "254712000301", "pin")  # the simulator sends the callback
    wait_for(admin, f"document.querySelector('{row}').dataset.status === 'completed'", timeout=WAIT)
    assert admin.locator(f"{row} .badge.text-bg-success").text_content() == "Completed"
    assert admin.evaluate("window.__sameDocument") is True  # no reload
    assert admin.input_value("input[name=q]") == "half-typed"
    assert row_ids(admin).count(new_id) == 1  # one row, however many frames named it

    # The toast reached the filtered page too, but its filter does not show the row.
    wait_for(failed_only, "window.__toasts.includes('PaymentCompleted')", timeout=WAIT)
    # Both events' rows were asked for and answered (204: outside the filter).
    wait_for(
        failed_only,
        "Number(document.querySelector('tbody[data-live-rows]').dataset.answered || 0) >= 2",
        timeout=WAIT,
    )
    assert row_ids(failed_only) == before_failed
    # Another tenant's page: neither a toast nor a row.
    assert row_ids(beta) == before_beta
    assert not [t for t in beta.evaluate("window.__toasts") if t.startswith("Payment")]
    assert admin.dialogs == [] and failed_only.dialogs == []


def test_a_new_hotspot_user_appears_escaped_and_the_scroll_stays(pages, portal_server):
    server = portal_server
    hostile = "<img src=x onerror=alert(1)>Night"
    server.manage(
        "shell",
        "-c",
        "from decimal import Decimal\n"
        "from hotspot.services import package_create\n"
        "from tenants.models import Tenant\n"
        f"package_create(tenant=Tenant.objects.get(slug='acme'), name={hostile!r},"
        " price=Decimal('10'), duration_minutes=60, by=None)\n",
    )
    watcher = list_page(pages, server, "acme-staff", "/hotspot-users/")
    beta = list_page(pages, server, "beta-admin", "/hotspot-users/")
    before_beta = row_ids(beta)
    watcher.evaluate("window.scrollTo(0, 120)")
    scrolled = watcher.evaluate("window.scrollY")

    seller = staff_page(pages, server, "acme-admin")
    seller.goto(f"{server.url}/hotspot-users/new/")
    value = seller.evaluate(
        "[...document.querySelectorAll('select[name=package] option')]"
        ".find((o) => o.textContent.includes('onerror=alert(1)>Night')).value"
    )
    seller.select_option("select[name=package]", value=value)
    seller.fill("input[name=username]", "live-row-guest")
    seller.locator("main form [type=submit]").first.click()
    seller.wait_for_url(lambda url: "/new/" not in url, timeout=WAIT)

    wait_for(
        watcher,
        "(() => { const r = document.querySelector('tbody[data-live-rows] tr[data-row-id]');"
        " return r && r.textContent.includes('live-row-guest'); })()",
        timeout=WAIT,
    )
    first = watcher.locator("tbody[data-live-rows] tr[data-row-id]").first
    assert hostile in first.text_content()  # shown as text
    assert first.locator("img").count() == 0  # never parsed as HTML
    assert watcher.dialogs == []
    assert watcher.evaluate("window.__sameDocument") is True
    assert abs(watcher.evaluate("window.scrollY") - scrolled) <= 1 or scrolled == 0
    assert row_ids(beta) == before_beta


def test_a_users_row_updates_and_keeps_the_reason_being_typed(new_page, server):
    """Another admin renames acme-staff while this admin types a suspension reason in that row:
    the row shows the new name, the half-typed reason, the focus and caret stay."""
    watcher = new_page("acme-admin")
    watcher.goto(f"{server.url}/users/")
    watcher.evaluate("window.__sameDocument = true")
    wait_for(watcher, "window.notifications.isConnected()", timeout=WAIT)
    row = 'tbody[data-live-rows] tr[data-user="acme-staff"]'
    reason = watcher.locator(f'{row} input[name="reason"]')
    reason.click()
    reason.type("Late with the ")
    before = watcher.get_attribute(row, "data-row-id")

    editor = new_page("acme-admin2")
    editor.goto(f"{server.url}/users/{before}/edit/")
    editor.fill("#id_first_name", "Renamed<b>")
    editor.click("#user-form button[type=submit]")
    editor.wait_for_url(f"{server.url}/users/")

    wait_for(
        watcher,
        f"document.querySelector('{row} .user-name').textContent.includes('Renamed<b>')",
        timeout=WAIT,
    )
    assert watcher.locator(f"{row} .user-name b").count() == 0  # text, not markup
    assert reason.input_value() == "Late with the "
    assert watcher.evaluate("document.activeElement.name") == "reason"
    reason.type("cash")  # the caret stayed at the end
    assert reason.input_value() == "Late with the cash"
    assert watcher.evaluate("window.__sameDocument") is True
    assert watcher.dialogs == []
