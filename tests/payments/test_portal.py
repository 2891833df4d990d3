"""The captive portal pages: buying, the router's hand-off, clear refusals, the pay page, the
status JSON; against the Daraja stand-in over HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from hotspot.models import Package
from payments import services
from payments.models import Payment
from tenants.models import Tenant
from tests.factories import PackageFactory
from tests.payments.daraja_standin import callback_body

pytestmark = pytest.mark.django_db

HANDOFF = {
    "link-login-only": "http://10.5.50.1/login",
    "link-orig": "http://example.com/news",
    "mac": "AA:BB:CC:DD:EE:FF",
    "ip": "10.5.50.23",
    "chap-id": "e3",
    "chap-challenge": "0102a0ff",
}


@pytest.fixture
def shop(mpesa_tenant, daraja):
    PackageFactory(tenant=mpesa_tenant, name="1 Hour", price=20, duration_minutes=60)
    PackageFactory(tenant=mpesa_tenant, name="Daily", price=50, duration_minutes=1440)
    PackageFactory(tenant=mpesa_tenant, name="Old", price=5, is_active=False)
    return mpesa_tenant


def buy(client, package, phone="0712345678", **extra):
    return client.post(
        "/portal/acme/", {"package": package.pk, "phone": phone, **extra}, REMOTE_ADDR="10.0.0.7"
    )


def test_the_portal_lists_the_active_packages_with_the_buy_form(client, shop):
    page = client.get("/portal/acme/").content.decode()
    assert 'id="buy-form"' in page and 'id="buy"' in page and 'name="phone"' in page
    assert page.count('name="package"') == 2 and "Old" not in page
    assert "KES 20" in page and "1 hour" in page and "1 day" in page
    assert "Acme WiFi" in page and "M-Pesa prompts" in page  # the limit is told


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("unknown", 404, "no hotspot at this address"),
        ("pending", 503, "not open for business yet"),
        ("suspended", 503, "not selling WiFi access right now"),
        ("no packages", 503, "no package on sale"),
    ],
)
def test_a_portal_that_cannot_sell_says_so_clearly(client, shop, case, status, words):
    slug = "acme"
    if case == "unknown":
        slug = "nobody"
    elif case == "no packages":
        Package.objects.filter(tenant=shop).update(is_active=False)
    else:
        Tenant.objects.filter(pk=shop.pk).update(status=case, suspension_reason="Unpaid fees")
    for response in (client.get(f"/portal/{slug}/"), client.post(f"/portal/{slug}/", {})):
        assert response.status_code == status
        page = response.content.decode()
        assert words in page and 'id="buy-form"' not in page
    assert Payment.objects.count() == 0


def test_buying_starts_the_push_and_lands_on_the_pay_page(client, shop, daraja):
    daily = Package.objects.get(tenant=shop, name="Daily")
    response = buy(client, daily, "0712 345 678", **HANDOFF)
    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/portal/acme/pay/{payment.token}/"
    assert (payment.phone, payment.amount, payment.client_ip) == ("254712345678", 50, "10.0.0.7")
    assert payment.handoff == HANDOFF
    page = client.get(response["Location"]).content.decode()
    assert 'id="payment-status" data-state="pending"' in page
    assert "Check your phone and enter your M-Pesa PIN" in page
    assert "http://10.5.50.1/login" in page  # the hand-off reaches the page's script
    assert len(daraja.pushes) == 1


@pytest.mark.parametrize("phone", ["", "12345", "0812345678", "+44 20 7946 0958", "07x2345678"])
def test_a_bad_phone_gets_an_error_next_to_the_field(client, shop, daraja, phone):
    daily = Package.objects.get(tenant=shop, name="Daily")
    response = buy(client, daily, phone, **HANDOFF)
    assert response.status_code == 400
    page = response.content.decode()
    assert re.search(r'id="phone-error">[^<]*(M-Pesa|phone)', page), page
    assert 'value="http://10.5.50.1/login"' in page  # the hand-off survives the error
    assert Payment.objects.count() == 0 and daraja.requests == []


def test_a_missing_or_foreign_package_is_refused(client, shop, other_tenant, daraja):
    foreign = PackageFactory(tenant=other_tenant)
    off = Package.objects.get(tenant=shop, name="Old")
    for package in (None, foreign.pk, off.pk, "x"):
        data = {"phone": "0712345678", **({"package": package} if package else {})}
        response = client.post("/portal/acme/", data)
        assert response.status_code == 400 and 'id="package-error"' in response.content.decode()
    assert Payment.objects.count() == 0


def test_the_limit_is_told_to_the_customer(client, settings, shop, daraja):
    settings.PORTAL_STK_LIMIT_PER_PHONE = 1
    daily = Package.objects.get(tenant=shop, name="Daily")
    assert buy(client, daily).status_code == 302
    response = buy(client, daily)
    assert response.status_code == 429
    assert "already been sent 1 M-Pesa prompts" in response.content.decode()
    assert Payment.objects.count() == 1


def test_hostile_handoff_values_are_dropped_and_everything_is_escaped(client, shop, daraja):
    hostile = {
        "link-login-only": "javascript:alert(1)",
        "link-orig": 'http://ok.example/"><script>alert(1)</script>',
        "mac": "<b>",
        "ip": "10.0.0.999",
        "chap-id": "zz",
    }
    page = client.get("/portal/acme/", hostile).content.decode()
    assert "javascript:" not in page and "<script>alert" not in page and "<b>" not in page
    daily = Package.objects.get(tenant=shop, name="Daily")
    buy(client, daily, **hostile)
    assert Payment.objects.get().handoff == {
        "link-orig": 'http://ok.example/"><script>alert(1)</script>'
    }
    page = client.get(f"/portal/acme/pay/{Payment.objects.get().token}/").content.decode()
    assert "<script>alert(1)" not in page


def test_handoff_values_with_control_characters_are_dropped(client, shop, daraja):
    """A NUL in a posted link reached the payment's JSON column: PostgreSQL refused it (a 500
    for anyone on the portal); a CR/LF or other control character has no place in a URL."""
    daily = Package.objects.get(tenant=shop, name="Daily")
    hostile = {
        "link-login-only": "http://10.5.50.1/lo\x00gin",
        "link-orig": "http://a.example/\r\nx",
    }
    response = buy(client, daily, **hostile)
    assert response.status_code == 302
    assert Payment.objects.get().handoff == {}


def test_a_refused_push_shows_the_reason_and_a_way_to_try_again(client, shop, daraja):
    from payments.providers.daraja import STK_PUSH_PATH

    daraja.fail(STK_PUSH_PATH, 500, {"errorMessage": "down"})
    daily = Package.objects.get(tenant=shop, name="Daily")
    response = buy(client, daily, **HANDOFF)
    page = client.get(response["Location"]).content.decode()
    assert 'data-state="failed"' in page and 'id="payment-error"' in page
    assert "not charged" in page
    assert 'id="try-again" href="/portal/acme/?link-login-only=' in page


def test_the_pay_page_and_status_json_follow_the_payment(client, shop, daraja):
    Tenant.objects.filter(pk=shop.pk).update(time_zone="Pacific/Kiritimati")  # not TIME_ZONE
    shop.refresh_from_db()
    daily = Package.objects.get(tenant=shop, name="Daily")
    buy(client, daily)
    payment = Payment.objects.get()
    status = client.get(f"/portal/status/{payment.token}/")
    assert status["Cache-Control"].startswith("max-age=0")
    assert status.json()["state"] == "pending" and "credentials" not in status.json()
    services.payment_settle_stk_callback(
        secret=payment.callback_secret,
        body=callback_body(payment.checkout_request_id, 0, amount=50),
    )
    user = payment.hotspot_user if hasattr(payment, "hotspot_user") else None
    payment.refresh_from_db()
    user = payment.hotspot_user
    data = client.get(f"/portal/status/{payment.token}/").json()
    assert data["state"] == "completed" and data["message"] == "Paid — you are online"
    assert data["credentials"]["username"] == user.username
    assert data["credentials"]["password"] == user.password
    page = client.get(f"/portal/acme/pay/{payment.token}/").content.decode()
    assert 'data-state="completed"' in page
    assert f'id="hotspot-username">{user.username}<' in page
    assert f'id="hotspot-password">{user.password}<' in page
    # Before portal.js rewrites it (or without it): the expiry in the hotspot's zone, not UTC's.
    shown = f"{user.expires_at.astimezone(shop.tzinfo):%Y-%m-%d %H:%M}"
    assert f'data-expires="{user.expires_at.isoformat()}">{shown}<' in page


def test_a_cancelled_payment_says_so(client, shop, daraja):
    daily = Package.objects.get(tenant=shop, name="Daily")
    buy(client, daily)
    payment = Payment.objects.get()
    services.payment_settle_stk_callback(
        secret=payment.callback_secret, body=callback_body(payment.checkout_request_id, 1032)
    )
    data = client.get(f"/portal/status/{payment.token}/").json()
    assert (data["state"], data["reason"]) == ("failed", "Cancelled on the phone")
    assert "credentials" not in data


def test_unknown_expired_or_other_tenants_tokens_open_nothing(client, shop, other_tenant, daraja):
    daily = Package.objects.get(tenant=shop, name="Daily")
    buy(client, daily)
    payment = Payment.objects.get()
    assert client.get(f"/portal/beta/pay/{payment.token}/").status_code == 404
    assert client.get("/portal/acme/pay/" + "x" * 32 + "/").status_code == 404
    assert client.get("/portal/status/" + "x" * 32 + "/").status_code == 404
    assert client.get(f"/portal/status/{payment.callback_secret}/").status_code == 404
    Payment.objects.filter(pk=payment.pk).update(token_expires_at=timezone.now() - timedelta(1))
    assert client.get(f"/portal/status/{payment.token}/").status_code == 404
    assert client.get(f"/portal/acme/pay/{payment.token}/").status_code == 404


def test_the_client_address_comes_from_config_clientip(client, shop, daraja):
    daily = Package.objects.get(tenant=shop, name="Daily")
    client.post(
        "/portal/acme/", {"package": daily.pk, "phone": "0712345678"}, REMOTE_ADDR="1.2.3.4"
    )
    assert Payment.objects.get().client_ip == "1.2.3.4"


def form_action(response) -> list[str]:
    policy = response["Content-Security-Policy"]
    [directive] = [d.strip() for d in policy.split(";") if d.strip().startswith("form-action")]
    return directive.split()[1:]


def test_the_pay_page_may_post_the_login_to_its_router_and_nowhere_else(client, shop, daraja):
    """CSP form-action is 'self' on every page; the pay page adds only its router's origin, so
    the sign-in form reaches link-login-only and a page can post the login nowhere else."""
    daily = Package.objects.get(tenant=shop, name="Daily")
    response = buy(client, daily, **HANDOFF)
    assert form_action(client.get("/portal/acme/")) == ["'self'"]
    assert form_action(client.get(response["Location"])) == ["'self'", "http://10.5.50.1"]
    buy(client, daily)  # no hand-off: nothing to post to
    token = Payment.objects.latest("pk").token
    assert form_action(client.get(f"/portal/acme/pay/{token}/")) == ["'self'"]


def test_stk_pushes_are_counted_by_result(client, shop, daraja):
    from prometheus_client import REGISTRY

    from payments.providers.daraja import STK_PUSH_PATH

    def pushes(result: str) -> float:
        return REGISTRY.get_sample_value("hotspot_stk_pushes_total", {"result": result}) or 0.0

    before = {result: pushes(result) for result in ("sent", "refused", "ambiguous")}
    daily = Package.objects.get(tenant=shop, name="Daily")
    buy(client, daily, "0712345678")  # Daraja takes it
    daraja.fail(STK_PUSH_PATH, 500, {"errorMessage": "down"})
    buy(client, daily, "0712345679")  # refused: the payment fails at once
    daraja.fail(STK_PUSH_PATH, 200, "garbage")
    buy(client, daily, "0712345670")  # a garbled answer: stays pending for the callback
    assert {result: pushes(result) - before[result] for result in before} == {
        "sent": 1,
        "refused": 1,
        "ambiguous": 1,
    }
    assert sorted(Payment.objects.values_list("status", flat=True)) == [
        "failed",
        "pending",
        "pending",
    ]
