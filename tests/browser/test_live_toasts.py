"""Live toasts in a real browser (Debian chromium) against a live daphne process.

Proves the issue's "done when": toOthers (the creator gets the flash, not a duplicate toast),
tenant isolation, fire_event from another process, XSS rendered literally, self-dismissal,
and reconnection after a server restart.
"""

from __future__ import annotations

import itertools

import pytest

from tests.browser.live import PASSWORD, wait_connected, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

XSS = "<img src=x onerror=alert(1)>"
_names = itertools.count(1)


def event_toasts(page, name: str):
    return page.locator(f'#toast-stack .app-toast[data-event="{name}"]')


def frames_with(page, event_name: str) -> list[str]:
    return [t for t in page.frames_seen if "recv" in t and f'"event":"{event_name}"' in t]


def create_user(page, server, *, username: str, first_name: str = "Nia", last_name: str = "Test"):
    page.goto(f"{server.url}/users/new/")
    wait_connected(page)
    page.fill("#id_username", username)
    page.fill("#id_first_name", first_name)
    page.fill("#id_last_name", last_name)
    page.fill("#id_password", PASSWORD)
    page.evaluate(  # when the form was sent, by the machine's clock (shared by every page)
        "document.getElementById('user-form').addEventListener('submit',"
        " () => sessionStorage.setItem('submittedAt', String(Date.now())))"
    )
    page.click("#user-form button[type=submit]")
    page.wait_for_url(f"{server.url}/users/")
    return int(page.evaluate("sessionStorage.getItem('submittedAt')"))


def record_arrivals(page, name: str) -> None:
    """Note (Date.now()) when the first toast of event `name` is added to the page."""
    page.evaluate(
        """(name) => new MutationObserver((records) => records.forEach((r) =>
             r.addedNodes.forEach((n) => n.dataset && n.dataset.event === name
               && !window.__arrivedAt && (window.__arrivedAt = Date.now()))))
           .observe(document.getElementById('toast-stack'), {childList: true})""",
        name,
    )


def test_user_created_reaches_the_other_admin_only(new_page, server):
    creator = new_page("acme-admin")
    colleague = new_page("acme-admin2")
    outsider = new_page("beta-admin")
    username = f"clerk-{next(_names)}"

    record_arrivals(colleague, "UserCreated")
    submitted_at = create_user(
        creator, server, username=username, first_name="Nia", last_name="Clerk"
    )

    # The colleague (another browser context, same tenant) sees the toast on the page it has
    # open, with no reload (the arrival mark lives in that page's window). How fast is measured
    # by bench/e2e.py on a machine of its own, not bounded here: a 2 s bound failed at load 22.
    toast = event_toasts(colleague, "UserCreated")
    toast.first.wait_for(state="visible", timeout=20_000)
    assert colleague.evaluate("window.__arrivedAt") >= submitted_at
    assert "Nia Clerk" in toast.first.inner_text()
    assert toast.first.get_attribute("data-level") == "success"

    # The creator sees the flash message, and no toast of its own event.
    flash = creator.locator('#toast-stack .app-toast[data-event="flash"]')
    assert "Nia Clerk has been added." in flash.first.inner_text()
    creator.wait_for_timeout(700)
    assert event_toasts(creator, "UserCreated").count() == 0
    assert frames_with(creator, "UserCreated") == []  # its socket never got the frame (toOthers)

    # Another tenant's admin gets nothing at all.
    assert event_toasts(outsider, "UserCreated").count() == 0
    assert frames_with(outsider, "UserCreated") == []


def test_xss_name_renders_literally(new_page, server):
    creator = new_page("acme-admin")
    colleague = new_page("acme-admin2")
    create_user(creator, server, username=f"xss-{next(_names)}", first_name=XSS, last_name="")

    toast = event_toasts(colleague, "UserCreated").first
    toast.wait_for(state="visible", timeout=20_000)
    assert XSS in toast.inner_text()
    assert colleague.locator("#toast-stack img").count() == 0
    # The flash message and the list show it as text too.
    assert XSS in creator.locator('#toast-stack [data-event="flash"]').first.inner_text()
    assert creator.locator("#user-table img").count() == 0
    assert creator.get_by_text(XSS).count() >= 1
    colleague.reload()
    assert colleague.locator("#recent-activity img, #toast-stack img").count() == 0
    assert creator.dialogs == [] and colleague.dialogs == []


def test_fire_event_from_another_process_reaches_system_admin(new_page, server):
    admin = new_page("sysadmin")
    admin.goto(f"{server.url}/system/events/")
    wait_connected(admin)
    tenant_admin = new_page("acme-admin")
    server.manage(
        "fire_event", "SystemAlert", "--title", "Disk almost full", "--message", "93% used on db-1"
    )
    toast = event_toasts(admin, "SystemAlert").first
    toast.wait_for(state="visible", timeout=20_000)
    assert "Disk almost full" in toast.inner_text() and "93% used on db-1" in toast.inner_text()
    assert toast.get_attribute("data-level") == "warning"
    feed = admin.locator('#system-feed [data-event="SystemAlert"]')
    assert "93% used on db-1" in feed.first.inner_text()
    tenant_admin.wait_for_timeout(500)
    assert event_toasts(tenant_admin, "SystemAlert").count() == 0


def test_toast_dismisses_itself_pauses_on_hover_and_caps_at_five(new_page, server):
    page = new_page("acme-admin")
    # A real event's toast goes away by itself after its level's time (success: 5 s), timed
    # inside the page so a loaded machine does not blur the measurement.
    page.evaluate(
        """() => {
          window.__toast = {};
          new MutationObserver((records) => records.forEach((r) => {
            r.addedNodes.forEach((n) => n.dataset && n.dataset.event === 'SystemNotification'
              && (window.__toast.added = performance.now()));
            r.removedNodes.forEach((n) => n.dataset && n.dataset.event === 'SystemNotification'
              && (window.__toast.removed = performance.now()));
          })).observe(document.getElementById('toast-stack'), {childList: true});
        }"""
    )
    server.manage(
        "fire_event",
        "SystemNotification",
        "--user",
        "acme-admin",
        "--title",
        "Hello",
        "--message",
        "Short-lived",
        "--level",
        "success",
    )
    event_toasts(page, "SystemNotification").first.wait_for(state="visible", timeout=10_000)
    wait_for(page, "window.__toast.removed !== undefined", timeout=15_000)
    shown_ms = page.evaluate("window.__toast.removed - window.__toast.added")
    # The timer starts before the observer sees the node (after the stack's forced layout, which
    # a loaded machine makes slow), so the observed time can fall short of 5 s by that layout;
    # the bounds still tell 5 s from the 6, 7 and 8 s of the other levels and from "at once".
    assert 4500 <= shown_ms <= 6500

    # The durations come from the server's catalog (json_script), not a list in the JS.
    durations = page.evaluate(
        "() => JSON.parse(document.getElementById('notifications-config').textContent).events"
    )
    assert durations["AccountSuspended"]["duration_ms"] == 8000
    assert durations["SystemAlert"]["duration_ms"] == 8000
    assert durations["TenantRegistered"]["duration_ms"] == 8000
    assert durations["UserCreated"]["duration_ms"] == 5000

    # Hovering pauses the timer; click dismisses; never more than five at once.
    page.evaluate("window.notifications.toast({event: 'Test', level: 'success', title: 'Hover'})")
    hovered = page.locator('#toast-stack [data-event="Test"]').first
    hovered.hover()
    page.wait_for_timeout(5600)
    assert hovered.is_visible()
    hovered.click()
    assert page.locator('#toast-stack [data-event="Test"]').count() == 0
    page.mouse.move(5, 5)
    for i in range(7):
        page.evaluate(f"window.notifications.toast({{event: 'Burst', title: 'n{i}'}})")
    assert page.locator("#toast-stack .app-toast").count() == 5
    assert page.locator("#toast-stack .app-toast").first.inner_text().startswith("n2")


def test_socket_reconnects_after_server_restart(new_page, server):
    page = new_page("acme-admin2")
    channels_before = page.evaluate("window.notifications.channels")
    assert any(c.startswith("tenant.") for c in channels_before)
    server.restart()
    wait_for(page, "!window.notifications.isConnected()", timeout=10_000)
    assert page.locator("#connection-indicator").get_attribute("data-state") != "online"
    wait_connected(page, timeout=30_000)
    assert page.locator("#connection-indicator").get_attribute("data-state") == "online"
    assert sorted(page.evaluate("window.notifications.channels")) == sorted(channels_before)
    # The new socket delivers events again.
    server.manage(
        "fire_event", "SystemNotification", "--user", "acme-admin2", "--message", "Back online"
    )
    event_toasts(page, "SystemNotification").first.wait_for(state="visible", timeout=20_000)


def test_one_socket_per_tab_and_none_on_public_pages(new_page, server):
    public = new_page()
    public.goto(f"{server.url}/register/")
    public.wait_for_timeout(500)
    assert public.evaluate("window.notifications.isConnected()") is False
    assert not any("connect ws" in t for t in public.frames_seen)
    page = new_page("acme-admin")
    page.wait_for_timeout(300)
    connects = [t for t in page.frames_seen if t.startswith("[notifications] connect ")]
    assert len(connects) == 1


PAY = """
from hotspot.models import Package
from payments.services import payment_initiate, payment_record_callback
from tenants.models import Tenant
acme = Tenant.objects.get(slug="acme")
package = Package.objects.filter(tenant=acme, is_active=True).order_by("price").first()
payment = payment_initiate(tenant=acme, package=package, phone="254733000111")
payment_record_callback(provider_reference=payment.provider_reference, succeeded=True,
                        amount=payment.amount, raw={"demo": True})
"""


def test_dashboard_counts_update_live_on_payment(new_page, server):
    page = new_page("acme-admin")
    stat = page.locator('#dashboard-stats [data-stat="payments_today"]')
    before = int(stat.get_attribute("data-value"))
    revenue_before = float(page.locator('[data-stat="revenue_today"]').inner_text())
    server.manage("shell", "-c", PAY)
    # Generous: the event reaches the server through the outbox poll, on a loaded machine.
    event_toasts(page, "PaymentCompleted").first.wait_for(state="visible", timeout=20_000)
    wait_for(
        page,
        f"document.querySelector('[data-stat=payments_today]').dataset.value === '{before + 1}'",
        timeout=20_000,
    )
    assert float(page.locator('[data-stat="revenue_today"]').inner_text()) > revenue_before
    # The recent-activity list got the event too (as text).
    live_items = page.locator('#recent-activity li[data-event="PaymentCompleted"]')
    assert "has been received" in live_items.first.inner_text()
