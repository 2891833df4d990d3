"""The Pusher socket loses its rights exactly when /ws/notifications/ does (one SocketGuard).

Revocation groups (a tenant's suspension closes a socket subscribed only to its user channel),
the password change (the API's token rule), the JWT's expiry, and the re-check that catches a
close message lost while Redis was down (a redis-server of the test's own, stopped by it).
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services as account_services
from accounts.models import User
from tenants import services as tenant_services
from tests.conftest import require_program
from tests.liveserver import RedisServer
from tests.notifications.wsutil import committed_db, event_message, group_send
from tests.pusher.test_consumer import established, open_socket, subscribe

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


@database_sync_to_async
def authorize_with(token: str, socket_id: str, channel: str):
    return Client().post(
        "/broadcasting/auth",
        {"socket_id": socket_id, "channel_name": channel},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@database_sync_to_async
def token_for(user, *, seconds: int | None = None) -> str:
    token = AccessToken.for_user(user)
    if seconds is not None:
        token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


async def user_channel_socket(user, token: str):
    """A socket subscribed only to private-user.<id>, its grant applied (an event came through)."""
    comm = await open_socket()
    socket_id = await established(comm)
    channel = f"private-user.{user.pk}"
    answer = await authorize_with(token, socket_id, channel)
    assert answer.status_code == 200, answer.content
    frame = await subscribe(comm, socket_id, channel, answer.json()["auth"])
    assert frame["event"] == "pusher_internal:subscription_succeeded"
    group = f"user.{user.pk}"
    async with asyncio.timeout(10):  # the grant travels over the layer: wait for it
        while True:
            await group_send(group, event_message(group, 1, name="SystemNotification"))
            try:
                got = await comm.receive_json_from(timeout=0.5)
            except TimeoutError:
                continue
            assert got["event"] == "SystemNotification"
            return comm


async def expect_pusher_close(comm, code: int, timeout: float = 5) -> dict:
    """Skip event frames until the pusher:error and close; both carry `code`."""
    error = None
    async with asyncio.timeout(timeout):
        while True:
            message = await comm.receive_output(timeout)
            if message["type"] == "websocket.close":
                assert message.get("code") == code, message
                assert error is not None and error["code"] == code
                return error
            frame = json.loads(message["text"])
            if frame["event"] == "pusher:error":
                error = json.loads(frame["data"])


async def test_tenant_suspension_closes_a_socket_subscribed_only_to_its_user_channel(
    tenant_admin,
):
    comm = await user_channel_socket(tenant_admin, await token_for(tenant_admin))
    await database_sync_to_async(tenant_services.tenant_suspend)(
        tenant=tenant_admin.tenant, reason="Unpaid", by=None
    )
    error = await expect_pusher_close(comm, 4009)  # at once: the re-check is 60 s away
    assert error["message"] == "Organisation suspended."
    # Nothing reaches it after: the user group's events go to no one.
    group = f"user.{tenant_admin.pk}"
    await group_send(group, event_message(group, 2, name="UserUpdated"))
    assert await comm.receive_nothing(timeout=0.3)


async def test_a_password_change_closes_a_pusher_socket_signed_with_the_old_token(staff):
    comm = await user_channel_socket(staff, await token_for(staff))
    await database_sync_to_async(account_services.user_change_password)(
        user=staff, new_password="Another-Horse-77", by=staff
    )
    error = await expect_pusher_close(comm, 4009)
    assert "Password changed" in error["message"]


async def test_a_pusher_socket_closes_when_the_token_that_signed_it_expires(staff):
    comm = await user_channel_socket(staff, await token_for(staff, seconds=3))
    error = await expect_pusher_close(comm, 4009, timeout=15)
    assert error["message"] == "Token expired."


async def test_the_recheck_timer_closes_a_pusher_socket_of_a_suspended_account(staff, settings):
    settings.NOTIFICATIONS_WS_RECHECK_SECONDS = 0.3
    comm = await user_channel_socket(staff, await token_for(staff))
    # A change whose close message never came (no signal at all: a row edited in place).
    await database_sync_to_async(User.objects.filter(pk=staff.pk).update)(
        status=User.Status.SUSPENDED, suspension_reason="x"
    )
    await expect_pusher_close(comm, 4009, timeout=10)


@pytest.fixture
def spare_redis(redis_url):
    require_program("redis-server")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def layer_on_spare_redis(settings, spare_redis):
    layer_config = copy.deepcopy(settings.CHANNEL_LAYERS["default"])
    if not layer_config.get("CONFIG", {}).get("hosts"):
        layer_config = {"BACKEND": "notifications.realtime.layers.FanoutChannelLayer", "CONFIG": {}}
    layer_config.setdefault("CONFIG", {})
    layer_config["CONFIG"]["hosts"] = [spare_redis.url]
    layer_config["CONFIG"]["prefix"] = f"sockguard-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": layer_config}
    settings.NOTIFICATIONS_SEND_TIMEOUT_SECONDS = 1.0
    return get_channel_layer()


@pytest.mark.redis
@pytest.mark.live
async def test_a_close_lost_while_redis_was_down_is_caught_by_the_recheck(
    staff, settings, spare_redis, layer_on_spare_redis
):
    """Redis stops; the suspension's notify.close is lost; the re-check closes the socket."""
    settings.NOTIFICATIONS_WS_RECHECK_SECONDS = 0.5
    comm = await user_channel_socket(staff, await token_for(staff))
    spare_redis.stop()
    await database_sync_to_async(account_services.user_suspend)(
        user=staff, reason="Left the company", by=None
    )
    error = await expect_pusher_close(comm, 4009, timeout=30)
    assert "suspended" in error["message"].lower()
