"""toOthers for plain form posts: the page's hidden `socket_id` field works like X-Socket-ID."""

from __future__ import annotations

import pytest

from notifications.models import StoredEvent

pytestmark = pytest.mark.django_db

NEW_USER = {
    "username": "field-clerk",
    "first_name": "Field",
    "last_name": "Clerk",
    "email": "",
    "phone": "",
    "role": "staff",
    "password": "Very-Secret-99",
}


def created_event() -> StoredEvent:
    return StoredEvent.objects.get(name="UserCreated")


def test_hidden_field_excludes_the_acting_socket(client, tenant_admin):
    client.force_login(tenant_admin)
    client.post("/users/new/", {**NEW_USER, "socket_id": "123456.7891011"})
    assert created_event().exclude == "123456.7891011"


def test_header_wins_over_the_field(client, tenant_admin):
    client.force_login(tenant_admin)
    client.post(
        "/users/new/",
        {**NEW_USER, "socket_id": "1.1"},
        headers={"X-Socket-ID": "2.2"},
    )
    assert created_event().exclude == "2.2"


@pytest.mark.parametrize("value", ["", "abc", "1.2.3", "<script>", "9" * 30 + ".1"])
def test_malformed_field_excludes_nobody(client, tenant_admin, value):
    client.force_login(tenant_admin)
    response = client.post("/users/new/", {**NEW_USER, "socket_id": value})
    assert response.status_code == 302  # the change itself still happens
    assert created_event().exclude is None


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/payments/stk/callback/cb-secret-0123456789abcdef/", {}),
        ("/api/payments/callback/", {"HTTP_X_SIGNATURE": "ab" * 32}),
        ("/apps/{app}/events?auth_key=x", {}),
    ],
)
def test_a_multipart_body_to_a_raw_body_endpoint_is_answered_not_a_500(settings, url, headers):
    """The field is read from a multipart body without using up the stream: the callbacks and
    the publish API read the raw body (a 500 with a traceback, anonymously, before)."""
    from django.test import Client

    response = Client(raise_request_exception=False).post(
        url.format(app=settings.PUSHER_APP_ID), {"socket_id": "1.2", "a": "b"}, **headers
    )
    assert 400 <= response.status_code < 500  # a clear refusal (not JSON, unsigned, unknown)


def test_the_field_still_works_in_a_multipart_form(client, tenant_admin):
    client.force_login(tenant_admin)
    from django.test.client import encode_multipart

    body = encode_multipart("BoUnDaRy", {**NEW_USER, "socket_id": "123456.7891011"})
    client.post("/users/new/", body, content_type="multipart/form-data; boundary=BoUnDaRy")
    assert created_event().exclude == "123456.7891011"
