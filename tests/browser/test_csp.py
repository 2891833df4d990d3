"""Content-Security-Policy and Permissions-Policy in a real browser: every page, and the API docs
(Swagger UI from drf-spectacular-sidecar), loads and works with no CSP violation."""

from __future__ import annotations

import pytest

from tests.browser.live import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

# Recorded from inside the page (Playwright's init scripts are not subject to the page's CSP).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__csp.push(
    `${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
"""

PAGES = {
    None: ["/accounts/login/", "/register/"],
    "acme-admin": [
        "/",
        "/users/",
        "/users/new/",
        "/packages/",
        "/hotspot-users/",
        "/payments/",
        "/notifications/",
        "/settings/",
        "/accounts/profile/",
        "/reports/",
    ],
    "sysadmin": [
        "/system/tenants/",
        "/system/events/",
        "/system/reports/",
        "/admin/",
        "/admin/accounts/user/",
    ],
}


def open_page(new_page, username):
    page = new_page(username)
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.csp_console = []
    page.on(
        "console",
        lambda msg: (
            page.csp_console.append(msg.text) if "Content Security Policy" in msg.text else None
        ),
    )
    return page


def violations(page):
    return page.evaluate("window.__csp || []") + page.csp_console


@pytest.mark.parametrize("username", list(PAGES), ids=lambda u: u or "anonymous")
def test_pages_load_under_the_policy_without_violations(new_page, server, username):
    page = open_page(new_page, username)
    for path in PAGES[username]:
        response = page.goto(f"{server.url}{path}")
        assert response.status == 200, path
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "camera=()" in headers["permissions-policy"]
        page.wait_for_load_state("networkidle")
        assert violations(page) == [], path
    if username == "sysadmin":  # the admin's user form has a (nonced) <style> of its own
        page.goto(f"{server.url}/admin/accounts/user/")
        page.locator("#result_list tbody a").first.click()
        page.wait_for_load_state("networkidle")
        assert page.locator("#viewers-notice").is_hidden()
        assert violations(page) == []


def test_the_api_docs_work_under_the_policy(new_page, server):
    page = open_page(new_page, None)
    response = page.goto(f"{server.url}/api/docs/")
    assert "content-security-policy" in response.headers
    page.locator(".opblock").first.wait_for(timeout=20_000)  # the schema loaded and rendered
    assert page.locator(".opblock").count() > 10
    page.locator(".opblock-summary").first.click()  # expand an operation (React, inline styles)
    page.locator(".opblock-body").first.wait_for(timeout=10_000)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # nonced <style>
    assert violations(page) == []


def test_an_injected_inline_script_is_blocked_and_seen(new_page, server):
    """The canary: the policy blocks inline script, and this test's recorder notices."""
    page = open_page(new_page, None)
    page.goto(f"{server.url}/accounts/login/")
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__ran = true'; document.body.append(s); }"""
    )
    wait_for(page, "window.__csp.length > 0", timeout=10_000)
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in violations(page))
