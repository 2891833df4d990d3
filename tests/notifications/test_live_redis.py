"""Real sockets against two daphne processes sharing the real Redis, and other OS processes.

A separate module from test_live.py: servers on different layers must not share the test
database at once (one's publisher would claim the other's events).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.factories import DEFAULT_PASSWORD
from tests.liveserver import (
    Browser,
    Daphne,
    Uvicorn,
    cookie_header,
    expect_close,
    jwt_for,
    nothing_arrives,
    recv_json,
    run_manage,
    run_shell,
    server_env,
)
from tests.notifications.wsutil import committed_db, event_message

pytestmark = [pytest.mark.live, committed_db]


@pytest.fixture(scope="module")
def redis_env(redis_url, django_db_setup):
    """Server environment on the real Redis, under a prefix of this test run only."""
    return server_env(redis_url=redis_url, prefix=f"{settings.CHANNELS_PREFIX}-{uuid.uuid4().hex}")


@pytest.fixture(scope="module")
def redis_servers(redis_env):
    """Two daphne processes sharing one Redis (and the test database)."""
    servers = Daphne.start(redis_env, count=2)
    yield servers
    for server in servers:
        server.stop()


# -- real Redis: two server processes and other OS processes -----------------------------------


async def test_redis_server_delivers_an_event_from_another_process(
    redis_servers, redis_env, staff, other_admin
):
    server_a, server_b = redis_servers
    tenant_a, tenant_b = f"tenant.{staff.tenant_id}", f"tenant.{other_admin.tenant_id}"
    async with (
        connect(
            server_a.ws, additional_headers={"Authorization": f"Bearer {await jwt_for(staff)}"}
        ) as on_a,
        connect(f"{server_b.ws}?token={await jwt_for(other_admin)}", origin=server_b.http) as on_b,
    ):
        assert (await recv_json(on_a))["type"] == "welcome"
        assert (await recv_json(on_b))["type"] == "welcome"
        # a separate OS process (not a server) publishes to each tenant's group
        script = "\n".join(
            [
                "from asgiref.sync import async_to_sync",
                "from channels.layers import get_channel_layer",
                "send = async_to_sync(get_channel_layer().group_send)",
                f"send({tenant_a!r}, {event_message(tenant_a, 101)!r})",
                f"send({tenant_b!r}, {event_message(tenant_b, 102)!r})",
            ]
        )
        await asyncio.to_thread(run_shell, redis_env, script)
        frame_a = await recv_json(on_a)
        frame_b = await recv_json(on_b)
        assert (frame_a["id"], frame_a["channel"]) == ("101", tenant_a)
        assert (frame_b["id"], frame_b["channel"]) == ("102", tenant_b)
        assert await nothing_arrives(on_a)
        assert await nothing_arrives(on_b)


async def test_fire_event_reaches_sockets_on_both_servers_and_no_other_tenant(
    redis_servers, redis_env, staff, tenant_admin, other_admin
):
    server_a, server_b = redis_servers
    async with (
        connect(f"{server_a.ws}?token={await jwt_for(staff)}") as staff_on_a,
        connect(f"{server_b.ws}?token={await jwt_for(tenant_admin)}") as admin_on_b,
        connect(f"{server_a.ws}?token={await jwt_for(other_admin)}") as beta_on_a,
    ):
        for ws in (staff_on_a, admin_on_b, beta_on_a):
            assert (await recv_json(ws))["type"] == "welcome"
        await asyncio.to_thread(
            run_manage, redis_env, "fire_event", "SystemAlert", "--tenant", "acme"
        )
        first = await recv_json(staff_on_a)
        second = await recv_json(admin_on_b)
        assert first == second
        assert (first["event"], first["channel"]) == ("SystemAlert", f"tenant.{staff.tenant_id}")
        assert await nothing_arrives(beta_on_a)


async def test_uvicorn_and_daphne_share_events_and_closes(
    redis_servers, redis_env, staff, system_admin, tenant_admin
):
    """The production server (uvicorn) next to daphne on one Redis; uvicorn sends reasons."""
    _, daphne_b = redis_servers
    (uvicorn,) = Uvicorn.start(redis_env)
    try:
        browser = Browser(daphne_b.http)
        session = await asyncio.to_thread(browser.login, system_admin.username, DEFAULT_PASSWORD)
        async with (
            connect(f"{uvicorn.ws}?token={await jwt_for(staff)}") as staff_ws,
            connect(
                uvicorn.ws, origin=uvicorn.http, additional_headers=cookie_header(session)
            ) as admin_ws,
        ):
            assert (await recv_json(staff_ws))["type"] == "welcome"
            assert (await recv_json(admin_ws))["type"] == "welcome"
            await asyncio.to_thread(
                run_manage, redis_env, "fire_event", "SystemAlert", "--tenant", "acme"
            )
            assert (await recv_json(staff_ws))["event"] == "SystemAlert"
            assert await nothing_arrives(admin_ws)  # system admins are not in tenant groups
            await asyncio.to_thread(browser.logout)  # on daphne B
            await expect_close(admin_ws, 4403, timeout=1)
            script = "\n".join(
                [
                    "from accounts.models import User",
                    "from accounts.services import user_suspend",
                    f"user_suspend(user=User.objects.get(pk={staff.pk}), reason='Unpaid',"
                    f" by=User.objects.get(pk={tenant_admin.pk}))",
                ]
            )
            await asyncio.to_thread(run_shell, redis_env, script)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(staff_ws.recv(), 5)
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                4403,
                "Account suspended.",
            )
    finally:
        uvicorn.stop()


async def test_logout_on_one_server_closes_the_socket_held_by_the_other(
    redis_servers, system_admin
):
    server_a, server_b = redis_servers
    browser = Browser(server_b.http)
    session = await asyncio.to_thread(browser.login, system_admin.username, DEFAULT_PASSWORD)
    async with connect(
        server_a.ws, origin=server_a.http, additional_headers=cookie_header(session)
    ) as ws:
        assert (await recv_json(ws))["type"] == "welcome"
        await asyncio.to_thread(browser.logout)  # handled by process B
        await expect_close(ws, 4403, timeout=1)


async def test_suspension_in_another_process_closes_the_socket(
    redis_servers, redis_env, staff, tenant_admin
):
    server_a, _ = redis_servers
    async with connect(f"{server_a.ws}?token={await jwt_for(staff)}") as ws:
        assert (await recv_json(ws))["type"] == "welcome"
        script = "\n".join(
            [
                "from accounts.models import User",
                "from accounts.services import user_suspend",
                f"user_suspend(user=User.objects.get(pk={staff.pk}), reason='Unpaid',"
                f" by=User.objects.get(pk={tenant_admin.pk}))",
            ]
        )
        await asyncio.to_thread(run_shell, redis_env, script)
        await expect_close(ws, 4403, timeout=2)
