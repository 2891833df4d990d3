"""The page's look and manners in a real browser: dark mode, toasts, icons, paging, a suspension.

A tenant of its own ("Lookout", created once per server) keeps these tests' rows, users and
suspension away from the other browser tests' counts.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.live import PASSWORD, sign_in, wait_connected, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

SETUP = f"""
from accounts.models import User
from accounts.services import user_create
from hotspot.models import Package
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.factories import HotspotUserFactory, PackageFactory
root = User.objects.get(username="sysadmin")
tenant = Tenant.objects.filter(slug="lookout").first() or tenant_create(
    name="Lookout", slug="lookout", contact_email="ops@lookout.example", by=root)
for username, role in [("look-admin", "tenant_admin"), ("look-staff", "staff"),
                       ("look-staff2", "staff")]:
    if not User.objects.filter(username=username).exists():
        user_create(username=username, password={PASSWORD!r}, role=role, tenant=tenant,
                    first_name=username, by=None)
if not Package.objects.filter(tenant=tenant).exists():
    HotspotUserFactory.create_batch(30, package=PackageFactory(tenant=tenant, name="Look 1h"))
"""


@pytest.fixture(scope="module")
def lookout(live_server_proc):
    live_server_proc.manage("shell", "-c", SETUP)
    return live_server_proc


def body_is_dark(page) -> bool:
    rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(n) for n in re.findall(r"\d+", rgb)[:3])
    return (red + green + blue) / 3 < 100


THEME_AT_BODY = """
window.__themeAtBody = "not seen";
new MutationObserver((records, observer) => {
  if (document.body) {
    window.__themeAtBody = document.documentElement.getAttribute("data-bs-theme");
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""


def test_dark_mode_follows_the_system_and_the_switch_overrides_it(browser, server, lookout):
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 800})
    context.add_init_script(THEME_AT_BODY)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/accounts/login/")
        # Set before the body exists, i.e. before anything is painted: no light flash.
        assert page.evaluate("window.__themeAtBody") == "dark"
        assert body_is_dark(page)
        sign_in(page, server, "look-admin")
        assert page.locator("html").get_attribute("data-bs-theme") == "dark"
        assert body_is_dark(page)

        # The switch overrides the system, and the choice is remembered across pages.
        page.click("#theme-switch")
        page.click('#theme-menu [data-theme-value="light"]')
        assert page.locator("html").get_attribute("data-bs-theme") == "light"
        assert not body_is_dark(page)
        page.goto(f"{server.url}/hotspot-users/")
        assert page.evaluate("window.__themeAtBody") == "light"
        assert not body_is_dark(page)
        light = page.locator('#theme-menu [data-theme-value="light"]')
        assert light.get_attribute("aria-pressed") == "true"

        # "System" follows the system again.
        page.click("#theme-switch")
        page.click('#theme-menu [data-theme-value="auto"]')
        assert page.locator("html").get_attribute("data-bs-theme") == "dark"
        page.reload()
        assert page.evaluate("window.__themeAtBody") == "dark"
    finally:
        context.close()


def test_light_system_gets_light_pages(browser, server, lookout):
    context = browser.new_context(color_scheme="light")
    try:
        page = context.new_page()
        page.goto(f"{server.url}/accounts/login/")
        assert page.locator("html").get_attribute("data-bs-theme") == "light"
        assert not body_is_dark(page)
    finally:
        context.close()


def test_an_error_toast_is_an_alert_the_others_are_status(new_page, server, lookout):
    page = new_page("look-admin")
    page.evaluate("window.notifications.toast({event: 'Boom', level: 'error', title: 'E'})")
    page.evaluate("window.notifications.toast({event: 'Fine', level: 'success', title: 'S'})")
    page.evaluate("window.notifications.toast({event: 'Note', level: 'info', title: 'I'})")
    error = page.locator('#toast-stack [data-event="Boom"]')
    assert error.get_attribute("role") == "alert"
    assert error.get_attribute("aria-live") == "assertive"
    for name in ("Fine", "Note"):
        assert page.locator(f'#toast-stack [data-event="{name}"]').get_attribute("role") == "status"
    assert page.locator("#toast-stack").get_attribute("aria-live") == "polite"


OVERLAPS = """
() => {
  const boxes = [...document.querySelectorAll(
    "#toast-stack .app-toast, #toast-more")].filter((el) => el.offsetParent !== null)
    .map((el) => el.getBoundingClientRect());
  const controls = [...document.querySelectorAll(
    "main button, main input, main select, main textarea, main a.btn, main form")]
    .filter((el) => el.offsetParent !== null && el.type !== "hidden");
  const hit = (a, b) =>
    a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  return {
    toasts: boxes.length,
    controls: controls.length,
    covered: controls.filter((el) => boxes.some((box) => hit(box, el.getBoundingClientRect())))
      .map((el) => el.outerHTML.slice(0, 80)),
  };
}
"""


@pytest.mark.parametrize("width", [1280, 360])
def test_toasts_never_cover_the_pages_buttons_and_forms(new_page, server, lookout, width):
    page = new_page("look-admin", width=width)
    page.goto(f"{server.url}/users/")
    wait_connected(page)
    for i in range(4):
        page.evaluate(
            f"window.notifications.toast({{event: 'Pile', level: 'info', title: 'n{i}',"
            f" message: 'A message long enough to wrap onto a second line of the toast'}})"
        )
    seen = page.evaluate(OVERLAPS)
    assert seen["toasts"] >= 2 and seen["controls"] >= 4
    assert seen["covered"] == []

    # Four toasts: the newest three show (one on a phone), older ones collapse behind "+N more".
    shown = 3 if width > 576 else 1
    assert page.locator("#toast-stack .app-toast:visible").count() == shown
    assert page.locator("#toast-more").inner_text() == f"+{4 - shown} more"
    page.click("#toast-more")
    assert page.locator("#toast-stack .app-toast:visible").count() == 4
    assert page.locator("#toast-more").count() == 0
    assert page.evaluate(OVERLAPS)["covered"] == []


def test_icons_are_the_vendored_bootstrap_icons_font(new_page, server, lookout):
    page = new_page("look-admin")
    responses = []
    page.on("response", lambda response: responses.append(response.url))
    page.reload()
    page.evaluate("document.fonts.ready")
    wait_for(page, "document.fonts.check('16px bootstrap-icons')", timeout=10_000)
    bell = page.locator("#notification-bell .bi-bell")
    assert bell.count() == 1
    glyph = page.evaluate(
        "getComputedStyle(document.querySelector('#notification-bell .bi'), '::before').content"
    )
    assert glyph not in ("none", "normal", "")
    assert "\U0001f514" not in page.locator("header").inner_text()  # no 🔔 emoji
    fonts = [url for url in responses if "bootstrap-icons" in url]
    assert fonts and all(url.startswith(server.url) for url in fonts)  # served by us, no CDN


def test_hotspot_users_page_through_every_row(new_page, server, lookout):
    page = new_page("look-admin")
    page.goto(f"{server.url}/hotspot-users/")
    assert page.locator("#hotspot-user-table tbody tr").count() == 25
    assert page.locator("[data-page-count]").inner_text() == "1–25 of 30 hotspot users"
    page.click("a[rel=next]")
    page.wait_for_url(re.compile(r"page=2"))
    assert page.locator("#hotspot-user-table tbody tr").count() == 5
    assert page.locator("[data-page-count]").inner_text() == "26–30 of 30 hotspot users"
    page.click("a[rel=prev]")
    page.wait_for_url(re.compile(r"page=1"))
    assert page.locator("#hotspot-user-table tbody tr").count() == 25


def test_a_suspended_user_sees_the_admins_reason_on_the_page_they_were_on(
    new_page, server, lookout
):
    staff = new_page("look-staff")
    staff.goto(f"{server.url}/hotspot-users/?page=2")
    wait_connected(staff)
    admin = new_page("look-admin")
    admin.goto(f"{server.url}/users/")
    row = admin.locator('tr[data-user="look-staff"]')
    row.locator('input[name="reason"]').fill("Till <b>audit</b> #7 ends")
    row.locator("button", has_text="Suspend").click()
    admin.wait_for_load_state()

    reason = staff.locator("#session-ended-reason")
    reason.wait_for(state="visible", timeout=15_000)
    assert "Till <b>audit</b> #7 ends" in reason.inner_text()  # as text, never as HTML
    assert "suspended" in reason.inner_text()
    assert staff.locator("#session-ended b").count() == 0
    assert staff.url.endswith("/hotspot-users/?page=2")  # still on their page
    assert staff.locator("#session-ended").get_attribute("role") == "alert"
    toast = staff.locator('#toast-stack [data-event="Disconnected"]')
    assert "Till <b>audit</b> #7 ends" in toast.inner_text()
    assert staff.dialogs == []


def test_a_toast_arriving_while_scrolled_does_not_cover_what_is_in_view(new_page, server, lookout):
    page = new_page("look-admin", width=1280, height=600)
    page.goto(f"{server.url}/hotspot-users/")
    wait_connected(page)
    page.evaluate("window.scrollTo(0, 500)")
    wait_for(page, "window.scrollY >= 400")
    # The first control fully below the header, before the toast.
    target = page.evaluate(
        """() => {
          const bottom = document.querySelector("header").getBoundingClientRect().bottom;
          const el = [...document.querySelectorAll("main button, main a.btn")]
            .find((b) => b.getBoundingClientRect().top > bottom);
          el.id = el.id || "scroll-target";
          return el.id;
        }"""
    )
    page.evaluate("window.notifications.toast({event: 'Late', level: 'info', title: 'Late'})")
    page.locator('#toast-stack [data-event="Late"]').wait_for(state="visible")
    covered = page.evaluate(
        f"""() => document.querySelector("header").getBoundingClientRect().bottom
             > document.getElementById("{target}").getBoundingClientRect().top"""
    )
    assert covered is False


def test_on_a_phone_the_theme_switch_is_in_the_account_menu(browser, server, lookout):
    context = browser.new_context(color_scheme="dark", viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        sign_in(page, server, "look-staff2")
        assert page.locator("#theme-switch").is_hidden()
        page.click("#user-menu")
        page.locator('[data-theme-value="light"]:visible').click()
        assert page.locator("html").get_attribute("data-bs-theme") == "light"
        page.reload()
        assert page.locator("html").get_attribute("data-bs-theme") == "light"
    finally:
        context.close()
