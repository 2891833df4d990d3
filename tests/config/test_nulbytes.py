"""A NUL byte in the path or query string is a 400 (PostgreSQL refuses it in text: a 500 before,
for anyone, on the portal's token pages, the STK callback and the list pages' searches)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
TOKEN = "a%00bcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(
    "url",
    [
        f"/portal/status/{TOKEN}/",
        f"/portal/acme/pay/{TOKEN}/",
        f"/portal/acme/voucher/{TOKEN}/",
        "/payments/?q=a%00b",
        "/users/?q=a%00b",
        "/users/?q%00=a",
    ],
)
def test_a_nul_byte_in_the_url_is_a_400(tenant_admin, url):
    client = Client(raise_request_exception=False)
    client.force_login(tenant_admin)
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_the_api_gets_its_error_shape(tenant_admin):
    client = Client(raise_request_exception=False)
    client.force_login(tenant_admin)
    response = client.get("/api/users/?ordering=a%00b")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nul_byte"


def test_a_nul_byte_in_the_stk_callback_path_or_body_changes_nothing():
    client = Client(raise_request_exception=False)
    url = f"/payments/stk/callback/{TOKEN}/"
    assert client.post(url, "{}", content_type="application/json").status_code == 400
    body = '{"Body": {"stkCallback": {"MerchantRequestID": "a\\u0000"}}}'
    ok_url = "/payments/stk/callback/abcdefghijklmnopqrstuvwxyz/"
    assert client.post(ok_url, body, content_type="application/json").status_code == 400
