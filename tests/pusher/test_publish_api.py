"""POST /apps/<app_id>/events: the official `pusher` server library publishes through the store."""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

import pusher
import pytest
from pusher.errors import PusherBadAuth, PusherBadRequest

from notifications.models import StoredEvent

pytestmark = pytest.mark.django_db(transaction=True)


def client(live_server, *, secret: str = "test-secret-0123456789") -> pusher.Pusher:
    url = urlparse(live_server.url)
    return pusher.Pusher(
        app_id="4242",
        key="test-key",
        secret=secret,
        host=url.hostname,
        port=url.port,
        ssl=False,
    )


def test_library_publishes_to_a_tenant_channel_through_the_store(live_server, tenant):
    data = {"title": "From Laravel", "message": "Hello", "level": "success"}
    client(live_server).trigger(
        f"private-tenant.{tenant.pk}", "SystemNotification", data, socket_id="12.34"
    )
    stored = StoredEvent.objects.get()
    assert (stored.name, stored.title, stored.message, stored.level) == (
        "SystemNotification",
        "From Laravel",
        "Hello",
        "success",
    )
    assert [t.group for t in stored.targets.all()] == [f"tenant.{tenant.pk}"]
    assert stored.exclude_socket_id == "12.34"


def test_presence_channels_publish_to_the_tenant_group_once(live_server, tenant):
    """presence-tenant.<id> is the tenant's group; subscribers get it on each channel once."""
    client(live_server).trigger(
        [f"presence-tenant.{tenant.pk}", f"private-tenant.{tenant.pk}"],
        "SystemNotification",
        {"message": "both"},
    )
    stored = StoredEvent.objects.get()
    assert [t.group for t in stored.targets.all()] == [f"tenant.{tenant.pk}"]


def test_batch_publishes_each_event(live_server, tenant, tenant_admin):
    client(live_server).trigger_batch(
        [
            {
                "channel": f"private-tenant.{tenant.pk}",
                "name": "SystemNotification",
                "data": json.dumps({"message": "one"}),
            },
            {
                "channel": f"private-user.{tenant_admin.pk}",
                "name": "SystemAlert",
                "data": json.dumps({"message": "two"}),
            },
        ]
    )
    assert sorted(StoredEvent.objects.values_list("message", flat=True)) == ["one", "two"]


def test_bad_signature_is_refused_and_stores_nothing(live_server, tenant):
    with pytest.raises(PusherBadAuth):
        client(live_server, secret="wrong").trigger(
            f"private-tenant.{tenant.pk}", "SystemNotification", {}
        )
    assert not StoredEvent.objects.exists()


def signed_post(body: bytes, *, timestamp: int):
    """A publish signed by hand per Pusher's spec (the library always stamps the time now)."""
    import hashlib
    import hmac
    from urllib.parse import urlencode

    from django.test import Client

    path = "/apps/4242/events"
    params = {
        "auth_key": "test-key",
        "auth_timestamp": str(timestamp),
        "auth_version": "1.0",
        "body_md5": hashlib.md5(body).hexdigest(),
    }
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["auth_signature"] = hmac.new(
        b"test-secret-0123456789", f"POST\n{path}\n{query}".encode(), hashlib.sha256
    ).hexdigest()
    return Client().post(f"{path}?{urlencode(params)}", body, content_type="application/json")


def test_stale_timestamp_is_refused_fresh_one_accepted(tenant):
    body = json.dumps(
        {"name": "SystemNotification", "channel": f"private-tenant.{tenant.pk}", "data": "{}"}
    ).encode()
    stale = signed_post(body, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 401
    assert "Timestamp expired" in stale.json()["error"]["message"]
    assert not StoredEvent.objects.exists()
    assert signed_post(body, timestamp=int(time.time())).status_code == 200
    assert StoredEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("channel", "name"),
    [
        ("private-tenant.999999", "SystemNotification"),  # no such tenant
        ("public-news", "SystemNotification"),  # maps to no group
        ("private-system.admin", "NotAnEvent"),  # not in the catalog
    ],
)
def test_unroutable_publishes_are_400(live_server, tenant, channel, name):
    with pytest.raises(PusherBadRequest):
        client(live_server).trigger(channel, name, {})
    assert not StoredEvent.objects.exists()


def test_unknown_app_id_is_404():
    from django.test import Client

    response = Client().post("/apps/other/events", "{}", content_type="application/json")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", None),
        (json.dumps({"name": "SystemNotification", "data": "{}"}).encode(), "channels"),
        (
            json.dumps({"name": "SystemNotification", "channels": [], "data": "{}"}).encode(),
            "channels",
        ),
        (
            json.dumps(
                {"name": "SystemNotification", "channel": "private-system.admin", "data": {}}
            ).encode(),
            "data",
        ),
        (
            json.dumps(
                {"name": "SystemNotification", "channel": "private-system.admin", "data": "[1]"}
            ).encode(),
            "data",
        ),
        (
            json.dumps(
                {
                    "name": "SystemNotification",
                    "channel": "private-system.admin",
                    "data": "x" * 10241,
                }
            ).encode(),
            "data",
        ),
        (
            json.dumps(
                {
                    "name": "SystemNotification",
                    "channel": "private-system.admin",
                    "data": "{}",
                    "socket_id": "abc",
                }
            ).encode(),
            "socket_id",
        ),
        (json.dumps({"channel": "private-system.admin", "data": "{}"}).encode(), "name"),
    ],
)
def test_bad_publish_bodies_are_400_and_store_nothing(db, body, field):
    response = signed_post(body, timestamp=int(time.time()))
    assert response.status_code == 400
    error = response.json()["error"]
    if field:
        assert field in error["fields"]
    assert not StoredEvent.objects.exists()


def test_batch_with_one_bad_event_stores_none(live_server, tenant):
    with pytest.raises(PusherBadRequest):
        client(live_server).trigger_batch(
            [
                {
                    "channel": f"private-tenant.{tenant.pk}",
                    "name": "SystemNotification",
                    "data": "{}",
                },
                {"channel": "private-tenant.999999", "name": "SystemNotification", "data": "{}"},
            ]
        )
    assert not StoredEvent.objects.exists()


@pytest.mark.parametrize("drop", ["auth_key", "auth_timestamp", "auth_signature", "body_md5"])
def test_missing_or_mismatched_auth_parameters_are_401(db, drop):
    from urllib.parse import urlencode

    from django.test import Client

    body = json.dumps(
        {"name": "SystemNotification", "channel": "private-system.admin", "data": "{}"}
    )
    good = signed_post(body.encode(), timestamp=int(time.time()))
    assert good.status_code == 200
    request = good.wsgi_request
    params = dict(request.GET.items())
    if drop == "body_md5":
        params["body_md5"] = "0" * 32
    else:
        params.pop(drop)
    response = Client().post(
        f"/apps/4242/events?{urlencode(params)}", body, content_type="application/json"
    )
    assert response.status_code == 401
    assert StoredEvent.objects.count() == 1  # only the good one
