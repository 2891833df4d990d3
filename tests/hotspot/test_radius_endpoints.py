"""/radius/ endpoints: only FreeRADIUS's token gets in; bad input is a clear 400."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from hotspot.models import HotspotSession
from tests.factories import HotspotUserFactory, RouterFactory

pytestmark = pytest.mark.django_db
TOKEN = "test-radius-token-0123456789"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def radius_client():
    return Client(HTTP_AUTHORIZATION=basic("freeradius", TOKEN))


@pytest.fixture
def router(tenant):
    return RouterFactory(tenant=tenant, address="192.0.2.50", secret="s-50")


@pytest.mark.parametrize(
    "auth",
    [None, basic("freeradius", "wrong"), basic("admin", TOKEN), "Bearer " + TOKEN, "Basic %%%"],
)
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/radius/client/?address=192.0.2.50"),
        ("get", "/radius/authorize/?router=1&username=u"),
        ("post", "/radius/accounting/?router=1"),
    ],
)
def test_anything_but_the_token_is_refused(router, auth, method, url):
    client = Client(**({"HTTP_AUTHORIZATION": auth} if auth else {}))
    response = getattr(client, method)(
        url, {"Acct-Status-Type": "Start"} if method == "post" else None
    )
    assert response.status_code == 403 and response.content == b""
    assert not HotspotSession.objects.exists()


def test_no_token_configured_refuses_even_an_empty_password(router, settings):
    settings.RADIUS_API_TOKEN = ""
    client = Client(HTTP_AUTHORIZATION=basic("freeradius", ""))
    assert client.get("/radius/client/?address=192.0.2.50").status_code == 403


def test_client_lookup(radius_client, router):
    body = radius_client.get("/radius/client/?address=192.0.2.50").json()
    assert body["control:FreeRADIUS-Client-Secret"] == "s-50"
    assert body["control:FreeRADIUS-Client-Shortname"] == str(router.pk)
    assert radius_client.get("/radius/client/?address=192.0.2.51").status_code == 404
    assert radius_client.get("/radius/client/?address=nope").status_code == 400


def test_authorize_is_one_query(radius_client, router, django_assert_max_num_queries):
    HotspotUserFactory(package__tenant=router.tenant, username="u1", password="pw")
    radius_client.get(f"/radius/authorize/?router={router.pk}&username=u1")  # notes last seen
    with django_assert_max_num_queries(1):
        response = radius_client.get(f"/radius/authorize/?router={router.pk}&username=u1")
    assert response.status_code == 200
    assert response.json()["control:Cleartext-Password"] == "pw"


@pytest.mark.parametrize(
    "query", ["", "router=abc&username=u", "router=1", "router=-1&username=u", "username=u"]
)
def test_authorize_bad_input(radius_client, router, query):
    assert radius_client.get(f"/radius/authorize/?{query}").status_code == 400


@pytest.mark.parametrize(
    "data",
    [
        {"Acct-Status-Type": "Bogus", "Acct-Session-Id": "s", "User-Name": "u"},
        {"Acct-Status-Type": "Start", "User-Name": "u"},
        {"Acct-Status-Type": "Start", "Acct-Session-Id": "s"},
        {"Acct-Status-Type": "Interim-Update", "Acct-Session-Id": "s", "User-Name": "u",
         "Acct-Input-Octets": "lots"},
        {"Acct-Status-Type": "Interim-Update", "Acct-Session-Id": "s", "User-Name": "u",
         "Acct-Input-Octets": "-5"},
        {"Acct-Status-Type": "Start", "Acct-Session-Id": "s", "User-Name": "u",
         "Framed-IP-Address": "not-an-ip"},  # was a 500 on PostgreSQL, garbage on SQLite
    ],
)  # fmt: skip
def test_accounting_bad_input_changes_nothing(radius_client, router, data):
    response = radius_client.post(f"/radius/accounting/?router={router.pk}", data)
    assert response.status_code == 400 and response.json()["error"]
    assert not HotspotSession.objects.exists()


def test_accounting_for_unknown_router(radius_client):
    data = {"Acct-Status-Type": "Start", "Acct-Session-Id": "s", "User-Name": "u"}
    assert radius_client.post("/radius/accounting/?router=999", data).status_code == 400
    assert radius_client.post("/radius/accounting/", data).status_code == 400


def test_wrong_methods(radius_client, router):
    assert radius_client.post("/radius/client/?address=192.0.2.50").status_code == 405
    assert radius_client.get(f"/radius/accounting/?router={router.pk}").status_code == 405


@pytest.mark.parametrize("field", ["User-Name", "Acct-Session-Id", "Calling-Station-Id"])
def test_a_nul_byte_in_accounting_is_a_400(radius_client, router, field):
    """PostgreSQL refuses NUL in text: a 500 (FreeRADIUS retrying) before."""
    data = {"Acct-Status-Type": "Start", "Acct-Session-Id": "s", "User-Name": "u", field: "a\x00b"}
    response = radius_client.post(f"/radius/accounting/?router={router.pk}", data)
    assert response.status_code == 400 and "NUL" in response.json()["error"]
    assert not HotspotSession.objects.exists()


def test_a_nul_byte_in_the_username_is_a_400(radius_client, router):
    response = radius_client.get(f"/radius/authorize/?router={router.pk}&username=a%00b")
    assert response.status_code == 400
