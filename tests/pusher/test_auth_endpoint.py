"""POST /broadcasting/auth: the signature for channels the user may join, by the WS rules."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.test import Client

from tests.conftest import bearer

URL = "/broadcasting/auth"
SOCKET = "123456.7891011"


def expected(channel: str, socket_id: str = SOCKET) -> str:
    signature = hmac.new(
        b"test-secret-0123456789", f"{socket_id}:{channel}".encode(), hashlib.sha256
    ).hexdigest()
    return f"test-key:{signature}"


def post(user=None, *, json: bool = False, **data):
    body = {"socket_id": SOCKET, **data}
    headers = {"HTTP_AUTHORIZATION": bearer(user)} if user is not None else {}
    if json:
        return Client().post(URL, body, content_type="application/json", **headers)
    return Client().post(URL, body, **headers)


@pytest.mark.parametrize("as_json", [False, True])
def test_bearer_token_gets_the_tenant_channel_signature(tenant_admin, as_json):
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    response = post(tenant_admin, json=as_json, channel_name=channel)
    assert response.status_code == 200
    assert response.json() == {"auth": expected(channel)}


def test_own_user_channel_and_admin_channel(tenant_admin, system_admin):
    channel = f"private-user.{tenant_admin.pk}"
    assert post(tenant_admin, channel_name=channel).json() == {"auth": expected(channel)}
    assert post(system_admin, channel_name="private-system.admin").status_code == 200


@pytest.mark.parametrize(
    ("role", "channel"),
    [
        ("other_admin", "private-tenant.{tenant}"),
        ("staff", "private-user.{admin}"),
        ("staff", "private-system.admin"),
        ("system_admin", "private-tenant.{tenant}"),
    ],
)
def test_channels_the_user_may_not_join_are_403(request, tenant_admin, role, channel):
    user = request.getfixturevalue(role)
    name = channel.format(tenant=tenant_admin.tenant_id, admin=tenant_admin.pk)
    response = post(user, channel_name=name)
    assert response.status_code == 403
    assert "auth" not in response.json()


def test_anonymous_is_refused(tenant):
    response = post(channel_name=f"private-tenant.{tenant.pk}")
    assert response.status_code in (401, 403)
    assert "auth" not in response.json()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"socket_id": "abc", "channel_name": "private-system.admin"}, "socket_id"),
        ({"socket_id": "1.2.3", "channel_name": "private-system.admin"}, "socket_id"),
        # Unicode digits: no socket has such an id (they are ASCII), the signature was useless
        ({"socket_id": "١٢٣.٤٥٦", "channel_name": "private-system.admin"}, "socket_id"),
        ({"channel_name": "private-tenant.\u0661"}, "channel_name"),
        ({"channel_name": "private-system.admin", "socket_id": ""}, "socket_id"),
        ({"channel_name": "tenant.1"}, "channel_name"),
        ({"channel_name": "presence-user.1"}, "channel_name"),
        ({"channel_name": "private-tenant.1;x"}, "channel_name"),
        ({}, "channel_name"),
    ],
)
def test_bad_input_is_400_naming_the_field(system_admin, data, field):
    response = post(system_admin, **data)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_session_cookie_needs_the_csrf_token(tenant_admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_admin)
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    refused = client.post(URL, {"socket_id": SOCKET, "channel_name": channel})
    assert refused.status_code == 403
    client.get("/")  # any page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        URL, {"socket_id": SOCKET, "channel_name": channel}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200
    assert response.json() == {"auth": expected(channel)}


def test_suspended_users_token_is_refused(tenant_admin, staff):
    from accounts.services import user_suspend

    token = bearer(staff)
    user_suspend(user=staff, by=tenant_admin, reason="test")
    response = Client().post(
        URL,
        {"socket_id": SOCKET, "channel_name": f"private-tenant.{staff.tenant_id}"},
        HTTP_AUTHORIZATION=token,
    )
    assert response.status_code in (401, 403)
