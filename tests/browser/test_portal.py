"""The captive portal in a real browser at phone size (360 px) against a live daphne serving the
M-Pesa simulator (/dev/mpesa/), which speaks Daraja's formats and sends the real callback.

Buy → pending → completed without a reload, with the credentials; acme's staff get the
toasts, beta's do not; cancelled; timed out (the server's periodic runner fails it); the
socket-less fallback; the router sign-in with CHAP-md5.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import pytest

from tests.browser.live import LiveServer, sign_in, wait_for
from tests.liveserver import StandIn, free_port

pytestmark = [pytest.mark.browser, pytest.mark.live]

PHONE_SIZE = {"width": 360, "height": 740}
WAIT = 30_000  # ms: generous, for a loaded machine


@pytest.fixture(scope="module")
def portal_server(chromium_path):
    """Its own live server: PUBLIC_URL must be known before it starts (Daraja's CallBackURL),
    and the periodic runner sweeps every second."""
    server = LiveServer()
    server.port = free_port()
    server.env.update(
        PUBLIC_URL=f"http://127.0.0.1:{server.port}",
        MPESA_SWEEP_SECONDS="1",
        PORTAL_STK_LIMIT_PER_PHONE="50",
        PORTAL_STK_LIMIT_PER_IP="200",
    )
    server.prepare()
    server.start()
    yield server
    server.close()


@pytest.fixture
def pages(browser):
    contexts = []

    def make(*, phone: bool = True, init: str | None = None):
        viewport = PHONE_SIZE if phone else {"width": 1280, "height": 800}
        context = browser.new_context(viewport=viewport)
        if init:
            context.add_init_script(init)
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        return page

    yield make
    for context in contexts:
        context.close()


def staff_page(pages, server, username):
    page = pages(phone=False)
    sign_in(page, server, username)
    page.evaluate(
        """() => { window.__toasts = [];
           new MutationObserver((rs) => rs.forEach((r) => r.addedNodes.forEach((n) =>
             n.dataset && n.dataset.event && window.__toasts.push(n.dataset.event))))
           .observe(document.getElementById('toast-stack'), {childList: true}); }"""
    )
    return page


def toasts(page):
    return page.evaluate("window.__toasts")


def buy(page, server, phone, package="Daily", query=""):
    page.goto(f"{server.url}/portal/acme/{query}")
    page.locator("label.package-option", has_text=package).locator("input[name=package]").check()
    page.fill("input[name=phone]", phone)
    page.click("#buy")
    page.wait_for_url("**/portal/acme/pay/**", timeout=WAIT)
    page.wait_for_selector('#payment-status[data-state="pending"]', timeout=WAIT)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads


def answer_prompt(pages, server, phone, action):
    """The customer's phone: the simulator's page, the prompt for `phone`, a button."""
    sim = pages(phone=True)
    sim.goto(f"{server.url}/dev/mpesa/")
    prompt = sim.locator(f'.prompt[data-phone="{phone}"]')
    prompt.wait_for(timeout=WAIT)
    prompt.locator(f'button[data-action="{action}"]').click()
    sim.wait_for_load_state()


def wait_state(page, state):
    page.wait_for_selector(f'#payment-status[data-state="{state}"]', timeout=WAIT)
    assert page.evaluate("window.__sameDocument") is True  # no reload


def test_buying_on_a_phone_goes_from_pending_to_online_live(pages, portal_server):
    server = portal_server
    acme = staff_page(pages, server, "acme-staff")
    beta = staff_page(pages, server, "beta-admin")
    customer = pages()
    buy(customer, server, "0712000101")
    assert customer.text_content("#payment-status #payment-message").strip() == (
        "Check your phone and enter your M-Pesa PIN"
    )
    assert customer.evaluate("document.documentElement.scrollWidth") <= 360  # fits the phone
    answer_prompt(pages, server, "254712000101", "pin")
    wait_state(customer, "completed")
    assert customer.text_content("#payment-message") == "Paid — you are online"
    username = customer.text_content("#hotspot-username").strip()
    password = customer.text_content("#hotspot-password").strip()
    assert username.startswith("hs-") and len(password) >= 8
    assert customer.text_content("#hotspot-expiry").strip()
    status = json.loads(customer.evaluate(
        "fetch(location.pathname.replace(/.*\\/pay\\//, '/portal/status/')).then(r => r.text())"
    ))  # fmt: skip
    assert status["credentials"] == {**status["credentials"], "username": username}
    wait_for(acme, "window.__toasts.includes('PaymentCompleted')", timeout=WAIT)  # the sale, live
    assert "PaymentInitiated" in toasts(acme)
    assert not [t for t in toasts(beta) if t.startswith("Payment")]
    assert customer.dialogs == []


def test_a_payment_cancelled_on_the_phone_says_so_and_offers_a_retry(pages, portal_server):
    server = portal_server
    acme = staff_page(pages, server, "acme-admin")
    customer = pages()
    buy(customer, server, "0712000102", query="?link-orig=http%3A%2F%2Fexample.com%2F")
    answer_prompt(pages, server, "254712000102", "cancel")
    wait_state(customer, "failed")
    assert customer.text_content("#payment-error").strip() == "Cancelled on the phone"
    assert customer.is_visible("#try-again")
    wait_for(acme, "window.__toasts.includes('PaymentFailed')", timeout=WAIT)
    customer.click("#try-again")
    customer.wait_for_selector("#buy-form", timeout=WAIT)
    assert customer.locator('#buy-form input[name="link-orig"]').get_attribute("value") == (
        "http://example.com/"
    )


def test_a_payment_nobody_answers_times_out(pages, portal_server):
    server = portal_server
    customer = pages()
    buy(customer, server, "0712000103")
    token = customer.url.rstrip("/").rsplit("/", 1)[1]
    # As if 200 s had passed: the server's own periodic runner must fail it.
    server.manage(
        "shell",
        "-c",
        "from datetime import timedelta\nfrom django.utils import timezone\n"
        "from payments.models import Payment\n"
        f"Payment.objects.filter(token={token!r}).update("
        "created_at=timezone.now() - timedelta(seconds=200))",
    )
    wait_state(customer, "failed")
    assert customer.text_content("#payment-error").startswith("Timed out")


def test_without_a_socket_the_page_falls_back_to_the_status_json(pages, portal_server):
    server = portal_server
    customer = pages(init="window.portalForcePolling = true;")
    buy(customer, server, "0712000104")
    answer_prompt(pages, server, "254712000104", "pin")
    wait_state(customer, "completed")
    assert customer.evaluate("window.portalFallback") is True
    assert customer.text_content("#hotspot-username").strip().startswith("hs-")


class _Router(StandIn):
    """A stand-in for the router's login endpoint (link-login-only): records the form."""

    def __init__(self) -> None:
        self.posts: list[dict[str, str]] = []
        super().__init__()
        self.login_url = f"{self.url}/login"

    def handle(self, request, method):
        if method == "POST":  # not the browser's favicon
            self.posts.append(self.form(request))
        body = b"<html><body id='router-status'>You are logged in</body></html>"
        self.respond(request, 200, body, "text/html")


def test_on_success_the_device_is_signed_in_at_the_router_with_chap(pages, portal_server):
    server = portal_server
    router = _Router()
    try:
        chap_id, challenge = "e3", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
        query = "?" + urllib.parse.urlencode(
            {
                "link-login-only": router.login_url,
                "link-orig": "http://example.com/news",
                "mac": "AA:BB:CC:DD:EE:01",
                "ip": "10.5.50.9",
                "chap-id": chap_id,
                "chap-challenge": challenge,
            }
        )
        customer = pages()
        buy(customer, server, "0712000105", query=query)
        answer_prompt(pages, server, "254712000105", "pin")
        wait_state(customer, "completed")
        password = customer.text_content("#hotspot-password").strip()
        username = customer.text_content("#hotspot-username").strip()
        customer.wait_for_selector("#router-status", timeout=WAIT)  # the form went to the router
        [post] = router.posts
        expected = hashlib.md5(
            bytes.fromhex(chap_id) + password.encode() + bytes.fromhex(challenge)
        ).hexdigest()
        assert post == {
            "username": username,
            "password": expected,
            "dst": "http://example.com/news",
            "popup": "true",
        }
    finally:
        router.close()


def test_a_voucher_redeemed_on_a_phone_signs_in_and_tells_acme_only(pages, portal_server):
    server = portal_server
    code = server.manage(
        "create_vouchers", "--tenant", "acme", "--package", "1 Hour", "--count", "1"
    ).split()[0]
    acme = staff_page(pages, server, "acme-admin")
    beta = staff_page(pages, server, "beta-admin")
    customer = pages()
    customer.goto(f"{server.url}/portal/acme/")
    customer.fill("#voucher-form input[name=code]", code.lower())
    customer.click("#redeem")
    customer.wait_for_selector('#payment-status[data-state="completed"]', timeout=WAIT)
    assert customer.text_content("#hotspot-username").strip().startswith("hs-")
    assert customer.text_content("#hotspot-password").strip()
    wait_for(acme, "window.__toasts.includes('VoucherRedeemed')", timeout=WAIT)
    assert "VoucherRedeemed" not in toasts(beta)
    # The same code on another phone: a clear error next to the field.
    other = pages()
    other.goto(f"{server.url}/portal/acme/")
    other.fill("#voucher-form input[name=code]", code)
    other.click("#redeem")
    assert "already been used" in other.text_content("#code-error")
