"""Take the README's screenshots with the browser tests' setup (live daphne + Debian chromium).

    .venv/bin/python docs/screenshots/take.py

Writes docs/screenshots/*.png from a fresh temp database loaded with `seed_demo`.
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


def main() -> None:
    server = LiveServer()
    server.prepare()
    server.start()
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            desktop = {"viewport": {"width": 1280, "height": 800}}
            phone = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}

            page = browser.new_context(**desktop).new_page()
            page.goto(f"{server.url}/accounts/login/")
            page.fill("#id_username", "gamma-admin")
            page.fill("#id_password", PASSWORD)  # right password, tenant not yet approved
            page.click("button[type=submit]")
            page.wait_for_load_state()
            shot(page, "login")

            page = browser.new_context(**desktop).new_page()
            page.goto(f"{server.url}/register/")
            page.fill("#id_name", "Acme")
            page.fill("#id_slug", "acme")
            page.fill("#id_contact_email", "not-an-email")
            page.fill("#id_admin_username", "new-admin")
            page.click("#register-form button[type=submit]")
            page.wait_for_selector("#register-error")
            shot(page, "register-errors", full_page=True)

            admin = sign_in(browser.new_context(**desktop).new_page(), server, "acme-admin")
            other = sign_in(browser.new_context(**desktop).new_page(), server, "acme-admin2")
            other.goto(f"{server.url}/users/new/")
            wait_connected(other)
            other.fill("#id_username", "jdoe")
            other.fill("#id_first_name", "John")
            other.fill("#id_last_name", "Doe")
            other.fill("#id_password", PASSWORD)
            other.click("#user-form button[type=submit]")
            other.wait_for_url(f"{server.url}/users/")
            server.manage("fire_event", "PaymentCompleted", "--object", "1", check=False)
            admin.locator('#toast-stack [data-event="UserCreated"]').wait_for(timeout=5000)
            admin.mouse.move(5, 5)
            shot(admin, "dashboard-toast")
            shot(other, "users")

            mobile = sign_in(browser.new_context(**phone).new_page(), server, "acme-admin")
            shot(mobile, "dashboard-phone")

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
            system.locator('#toast-stack [data-event="SystemAlert"]').wait_for(timeout=5000)
            shot(system, "system-tenants")
            browser.close()
    finally:
        server.close()


if __name__ == "__main__":
    main()
