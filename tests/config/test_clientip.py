"""The client address (config.clientip): the right hop of X-Forwarded-For only, per the settings.

The nginx configuration of docs/deployment.md (`$proxy_add_x_forwarded_for`) turns a client's own
`X-Forwarded-For: <forged>` into `<forged>, <real>`; nginx itself is the peer (127.0.0.1).
"""

import uuid

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings
from rest_framework.request import Request
from rest_framework.test import APIClient

from config.clientip import client_ip, resolve, scope_client_ip
from tests.factories import DEFAULT_PASSWORD

NGINX = "127.0.0.1"
REAL = "203.0.113.5"


def test_by_default_no_proxy_is_trusted_and_the_header_is_ignored():
    assert resolve("192.0.2.1", "10.9.9.9") == "192.0.2.1"
    assert resolve("192.0.2.1", f"10.9.9.9, {REAL}") == "192.0.2.1"


@override_settings(NUM_PROXIES=1)
def test_one_proxy_takes_the_hop_it_appended_not_the_forged_one():
    assert resolve(NGINX, f"6.6.6.6, {REAL}") == REAL
    assert resolve(NGINX, REAL) == REAL
    assert resolve(NGINX, None) == NGINX  # reached directly, bypassing the proxy
    assert resolve(NGINX, "not-an-address") == NGINX
    assert resolve(NGINX, "6.6.6.6, [2001:db8::1]:443") == "2001:db8::1"


@override_settings(NUM_PROXIES=2)
def test_two_proxies_take_the_second_hop_from_the_right():
    assert resolve("10.0.0.2", f"6.6.6.6, {REAL}, 10.0.0.1") == REAL
    assert resolve("10.0.0.2", "10.0.0.1") == "10.0.0.2"  # fewer hops than proxies


@override_settings(TRUSTED_PROXIES=["127.0.0.1", "10.0.0.0/8"])
def test_trusted_proxies_skip_our_own_hops_from_the_right():
    assert resolve(NGINX, f"6.6.6.6, {REAL}, 10.1.2.3") == REAL
    assert resolve("192.0.2.9", f"6.6.6.6, {REAL}") == "192.0.2.9"  # peer is no proxy of ours
    assert resolve(NGINX, "garbage, 10.1.2.3") == NGINX


@override_settings(NUM_PROXIES=1)
def test_django_and_drf_requests_and_asgi_scopes_agree():
    request = RequestFactory().get("/", REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=f"1.1.1.1, {REAL}")
    assert client_ip(request) == client_ip(Request(request)) == REAL
    scope = {
        "client": (NGINX, 5555),
        "headers": [(b"X-Forwarded-For", f"1.1.1.1, {REAL}".encode())],
    }
    assert scope_client_ip(scope) == REAL
    assert scope_client_ip({"client": None, "headers": []}) == ""


@pytest.fixture
def small_auth_rate():
    fresh = {**settings.CACHES["default"], "KEY_PREFIX": f"clientip-{uuid.uuid4().hex[:8]}"}
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/min"}
    with override_settings(
        CACHES={"default": fresh},
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates},
    ):
        yield


def obtain(password, forged, **settings_kw):
    return APIClient().post(
        "/api/auth/token/",
        {"username": "acme-staff", "password": password},
        REMOTE_ADDR=NGINX,
        HTTP_X_FORWARDED_FOR=f"{forged}, {REAL}",
    )


@pytest.mark.parametrize("num_proxies", [0, 1])
def test_a_new_forged_address_each_time_does_not_escape_the_token_throttle(
    small_auth_rate, staff, num_proxies
):
    with override_settings(NUM_PROXIES=num_proxies):
        codes = [obtain(DEFAULT_PASSWORD, f"10.0.{n}.1").status_code for n in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


@override_settings(NUM_PROXIES=1)
def test_a_new_forged_address_each_time_does_not_escape_the_lockout(staff, signal_log):
    codes = [obtain("wrong", f"10.1.{n}.1").status_code for n in range(7)]
    assert codes == [401] * 4 + [429] * 3
    [lock] = [kw for name, kw in signal_log if name == "sign_in_locked"]
    assert lock["address"] == REAL
    # From another real address (still through nginx) the person signs in.
    other = APIClient().post(
        "/api/auth/token/",
        {"username": "acme-staff", "password": DEFAULT_PASSWORD},
        REMOTE_ADDR=NGINX,
        HTTP_X_FORWARDED_FOR=f"{REAL}, 198.51.100.20",
    )
    assert other.status_code == 200
