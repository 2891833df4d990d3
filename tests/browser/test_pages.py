"""Pages in a real browser: sign-in errors, registration states, phone width, staff view."""

from __future__ import annotations

import pytest

from tests.browser.live import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_sign_in_error_and_pending_tenant_message(new_page, server):
    page = new_page()
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", "gamma-admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "awaiting approval" in page.locator(".alert-danger").inner_text()
    assert page.evaluate("window.notifications.isConnected()") is False


def test_registration_shows_progress_then_pending_approval(new_page, server):
    system_admin = new_page("sysadmin")
    page = new_page(width=390, height=844)  # phone width
    page.goto(f"{server.url}/register/")
    page.fill("#id_name", "Zeta Spots")
    page.fill("#id_contact_email", "ops@zeta.example")
    page.fill("#id_admin_username", "zeta-admin")
    page.fill("#id_admin_password", PASSWORD)
    page.fill("#id_admin_password_confirm", PASSWORD)
    # Slow the network so the busy state lasts, record it from inside the page, and
    # double-click: the browser sends one POST.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 800, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.evaluate(
        """() => document.getElementById('register-form').addEventListener('submit', () =>
          setTimeout(() => {
            const b = document.querySelector('#register-form button[type=submit]');
            const p = document.getElementById('register-progress');
            sessionStorage.setItem('busy', JSON.stringify({
              disabled: b.disabled, text: b.textContent,
              progress: !p.classList.contains('d-none')}));
          }, 30))"""
    )
    page.locator("#register-form button[type=submit]").dblclick()
    page.wait_for_url(f"{server.url}/register/done/", timeout=15_000)
    assert "pending approval" in page.locator("#register-success").inner_text()
    busy = page.evaluate("JSON.parse(sessionStorage.getItem('busy'))")
    assert busy["disabled"] is True and "Registering" in busy["text"] and busy["progress"]
    assert posts == [f"{server.url}/register/"]
    out = server.manage(
        "shell",
        "-c",
        "from tenants.models import Tenant;print(Tenant.objects.filter(name='Zeta Spots').count())",
    )
    assert out.strip().splitlines()[-1] == "1"
    # The system admins hear about it at once.
    toast = system_admin.locator('#toast-stack [data-event="TenantRegistered"]').first
    toast.wait_for(state="visible", timeout=20_000)
    assert "Zeta Spots" in toast.inner_text()
    # Phone width: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_registration_errors_are_inline(new_page, server):
    page = new_page()
    page.goto(f"{server.url}/register/")
    page.fill("#id_name", "Acme")
    page.fill("#id_slug", "acme")
    page.fill("#id_contact_email", "not-an-email")
    page.fill("#id_admin_username", "someone")
    page.fill("#id_admin_password", PASSWORD)
    page.fill("#id_admin_password_confirm", "different")
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#register-error")
    assert page.locator("#id_contact_email.is-invalid").count() == 1
    assert "do not match" in page.locator("#id_admin_password_confirm_error").inner_text()
    assert page.locator("#register-form button[type=submit]").is_enabled()


def test_staff_see_users_without_buttons_on_a_phone(new_page, server):
    page = new_page("acme-staff", width=390, height=844)
    page.goto(f"{server.url}/users/")
    assert page.locator("#user-table").is_visible()
    assert page.locator("#add-user").count() == 0
    assert page.locator("#user-table form").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
