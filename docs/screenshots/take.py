"""Take the README's screenshots with the browser tests' setup (live daphne + Debian chromium).

    .venv/bin/python docs/screenshots/take.py

Writes docs/screenshots/<page>-light.png and <page>-dark.png (desktop and phone widths) from a
fresh temp database loaded with `seed_demo`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.live import PASSWORD, LiveServer, launch_browser, sign_in, wait_connected  # noqa: E402

OUT = Path(__file__).resolve().parent


def shot(page, name: str, full_page: bool = False) -> None:
    page.wait_for_timeout(300)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)
    print("wrote", OUT / f"{name}.png")


SCHEMES = ("light", "dark")
# A different new user per scheme (the second run must not collide with the first).
NEW_USERS = {"light": ("jdoe", "John", "Doe"), "dark": ("wanjiku", "Wanjiku", "Kamau")}


def take(browser, server, scheme: str) -> None:
    """Every screenshot in one colour scheme: the browser's own setting (prefers-color-scheme),
    which the pages follow (static/js/theme.js sets data-bs-theme before the first paint)."""
    desktop = {"viewport": {"width": 1280, "height": 800}, "color_scheme": scheme}
    phone = {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "color_scheme": scheme,
    }

    def name(base: str) -> str:
        return f"{base}-{scheme}"

    page = browser.new_context(**desktop).new_page()
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", "gamma-admin")
    page.fill("#id_password", PASSWORD)  # right password, tenant not yet approved
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.get_attribute("html", "data-bs-theme") == scheme
    shot(page, name("login"))

    page = browser.new_context(**desktop).new_page()
    page.goto(f"{server.url}/register/")
    page.fill("#id_name", "Acme")
    page.fill("#id_slug", "acme")
    page.fill("#id_contact_email", "not-an-email")
    page.fill("#id_admin_username", "new-admin")
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#register-error")
    shot(page, name("register-errors"), full_page=True)

    admin = sign_in(browser.new_context(**desktop).new_page(), server, "acme-admin")
    other = sign_in(browser.new_context(**desktop).new_page(), server, "acme-admin2")
    other.goto(f"{server.url}/users/new/")
    wait_connected(other)
    username, first, last = NEW_USERS[scheme]
    other.fill("#id_username", username)
    other.fill("#id_first_name", first)
    other.fill("#id_last_name", last)
    other.fill("#id_password", PASSWORD)
    other.click("#user-form button[type=submit]")
    other.wait_for_url(f"{server.url}/users/")
    created = admin.locator('#toast-stack [data-event="UserCreated"]')
    created.wait_for(timeout=20_000)
    created.hover()  # a hovered toast waits (the next command takes seconds on a busy machine)
    server.manage("fire_event", "PaymentCompleted", "--object", "1", check=False)
    admin.locator('#toast-stack [data-event="PaymentCompleted"]').wait_for(timeout=20_000)
    shot(admin, name("dashboard-toast"))
    shot(other, name("users"))

    admin.goto(f"{server.url}/payments/")
    wait_connected(admin)
    shot(admin, name("payments"))
    admin.goto(f"{server.url}/reports/")
    admin.wait_for_selector("#report[data-chart-ready]")
    shot(admin, name("reports"))

    mobile = sign_in(browser.new_context(**phone).new_page(), server, "acme-admin")
    shot(mobile, name("dashboard-phone"))

    customer = browser.new_context(**phone).new_page()
    customer.goto(f"{server.url}/portal/acme/")
    shot(customer, name("portal-phone"))

    system = sign_in(browser.new_context(**desktop).new_page(), server, "sysadmin")
    system.goto(f"{server.url}/system/tenants/")
    wait_connected(system)
    server.manage(
        "fire_event",
        "SystemAlert",
        "--title",
        "Disk almost full",
        "--message",
        "93% used on db-1",
    )
    system.locator('#toast-stack [data-event="SystemAlert"]').wait_for(timeout=20_000)
    shot(system, name("system-tenants"))


def main() -> None:
    server = LiveServer()
    server.prepare()
    server.start()
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            for scheme in SCHEMES:
                take(browser, server, scheme)
            browser.close()
    finally:
        server.close()


if __name__ == "__main__":
    main()
