"""The Pusher publish API builds events through the catalog (payload, audience, roles, message).

Issue 12: a UserUpdated published to private-tenant.<id> reached staff, and a TenantSuspended
was stored with payload {"x": 1} and its template unfilled.
"""

from __future__ import annotations

import json
import time

import pytest
from channels.db import database_sync_to_async

from notifications.events import relay as publisher
from notifications.events.payloads import user_data
from notifications.models import StoredEvent
from tests.notifications.wsutil import committed_db, connect_user
from tests.pusher.test_publish_api import signed_post

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


def publish(name: str, channel: str, data: dict):
    body = json.dumps({"name": name, "channel": channel, "data": json.dumps(data)}).encode()
    return signed_post(body, timestamp=int(time.time()))


async def test_a_user_updated_published_to_the_tenant_reaches_its_admins_not_staff(
    tenant_admin, staff
):
    admin_socket, _ = await connect_user(tenant_admin)
    staff_socket, _ = await connect_user(staff)
    data = {**user_data(staff), "changed": ["full_name"]}
    answer = await database_sync_to_async(publish)(
        "UserUpdated", f"private-tenant.{staff.tenant_id}", data
    )
    assert answer.status_code == 200, answer.content
    await publisher.publish_pending()
    frame = await admin_socket.receive_json_from(timeout=5)
    assert (frame["event"], frame["message"]) == (
        "UserUpdated",
        f"{staff.display_name}'s account has been updated.",  # the catalog's template
    )
    assert await staff_socket.receive_nothing(timeout=0.5)
    stored = await database_sync_to_async(StoredEvent.objects.get)()
    targets = await database_sync_to_async(
        lambda: [(t.group, t.roles) for t in stored.targets.all()]
    )()
    assert targets == [(f"tenant.{staff.tenant_id}", ["tenant_admin"])]
    for comm in (admin_socket, staff_socket):
        await comm.disconnect()


@pytest.mark.parametrize(
    ("name", "data", "field", "says"),
    [
        ("TenantSuspended", {"x": 1}, "data.reason", "unexpected x"),
        ("UserUpdated", {"title": "hi"}, "data.changed", "missing changed"),
    ],
)
def test_a_payload_that_does_not_fit_the_catalog_is_400_naming_the_field(
    tenant, name, data, field, says
):
    answer = publish(name, f"private-tenant.{tenant.pk}", data)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert field in error["fields"]
    assert says in error["message"]
    assert not StoredEvent.objects.exists()


def test_a_channel_outside_the_catalog_audience_is_400(tenant, staff):
    """PasswordChanged goes to the person only: publishing it to their tenant is refused."""
    data = {"user_id": staff.pk, "username": staff.username}
    answer = publish("PasswordChanged", f"private-tenant.{tenant.pk}", data)
    assert answer.status_code == 400
    assert "channels" in answer.json()["error"]["fields"]
    assert publish("PasswordChanged", f"private-user.{staff.pk}", data).status_code == 200
    stored = StoredEvent.objects.get()
    assert stored.message == "Your password has been changed."


def test_a_deep_json_body_is_400_not_500(db):
    answer = signed_post(("[" * 2000 + "]" * 2000).encode(), timestamp=int(time.time()))
    assert answer.status_code == 400
