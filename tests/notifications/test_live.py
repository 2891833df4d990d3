"""Real sockets against live daphne processes: in-memory layer, Redis, and across processes."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.factories import DEFAULT_PASSWORD
from tests.notifications.liveserver import Browser, Daphne, run_manage, run_shell, server_env
from tests.notifications.wsutil import committed_db, event_message

pytestmark = [pytest.mark.live, committed_db]


@pytest.fixture(scope="module")
def memory_server(django_db_setup):
    """One daphne on the in-memory layer (the embedded default)."""
    (server,) = Daphne.start(server_env(redis_url=None))
    yield server
    server.stop()


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


@database_sync_to_async
def jwt_for(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


def cookie_header(session: str) -> dict[str, str]:
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}


async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect_close(ws, code: int, timeout: float = 5) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def nothing_arrives(ws, wait: float = 0.5) -> bool:
    try:
        frame = await asyncio.wait_for(ws.recv(), wait)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected frame {frame}")


# -- embedded default: in-memory layer ---------------------------------------------------------


async def test_session_cookie_from_a_real_login(memory_server, system_admin):
    browser = Browser(memory_server.http)
    session = await asyncio.to_thread(browser.login, system_admin.username, DEFAULT_PASSWORD)
    async with connect(
        memory_server.ws, origin=memory_server.http, additional_headers=cookie_header(session)
    ) as ws:
        welcome = await recv_json(ws)
        assert welcome["type"] == "welcome"
        assert welcome["channels"] == ["system.admin", f"user.{system_admin.pk}"]
        await ws.send(json.dumps({"action": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}
        await ws.send(json.dumps({"action": "subscribe", "channel": "tenant.1"}))
        assert (await recv_json(ws))["code"] == "forbidden"
        await ws.send(b"\x00binary")
        assert (await recv_json(ws))["code"] == "binary_not_supported"
        await ws.send("x" * 5000)
        assert (await recv_json(ws))["code"] == "frame_too_large"
        await ws.send(json.dumps({"action": "ping"}))
        assert await recv_json(ws) == {"type": "pong"}


async def test_logout_closes_the_socket_4403(memory_server, system_admin):
    browser = Browser(memory_server.http)
    session = await asyncio.to_thread(browser.login, system_admin.username, DEFAULT_PASSWORD)
    async with connect(
        memory_server.ws, origin=memory_server.http, additional_headers=cookie_header(session)
    ) as ws:
        assert (await recv_json(ws))["type"] == "welcome"
        await asyncio.to_thread(browser.logout)
        await expect_close(ws, 4403, timeout=1)


@pytest.mark.parametrize("where", ["header", "query"])
async def test_jwt_from_simplejwt(where, memory_server, staff):
    token = await jwt_for(staff)
    if where == "header":
        client = connect(memory_server.ws, additional_headers={"Authorization": f"Bearer {token}"})
    else:
        client = connect(f"{memory_server.ws}?token={token}")
    async with client as ws:  # a non-browser client: no Origin header at all
        welcome = await recv_json(ws)
        assert welcome["user"]["username"] == "acme-staff"
        assert welcome["channels"] == [f"tenant.{staff.tenant_id}", f"user.{staff.pk}"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not.a.token"}])
async def test_bad_credentials_close_4401_visible_to_the_client(headers, memory_server):
    async with connect(memory_server.ws, additional_headers=headers) as ws:
        await expect_close(ws, 4401)


async def test_foreign_origin_is_refused_at_the_handshake(memory_server, staff):
    token = await jwt_for(staff)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{memory_server.ws}?token={token}", origin="https://evil.example"
        ) as ws:
            await ws.recv()
    assert refused.value.response.status_code == 403


async def test_fire_event_in_another_process_reaches_the_embedded_server(
    memory_server, staff, other_admin
):
    """In-memory layer: the server's publisher picks up what `fire_event` stored."""
    env = server_env(redis_url=None)
    async with (
        connect(f"{memory_server.ws}?token={await jwt_for(staff)}") as acme,
        connect(f"{memory_server.ws}?token={await jwt_for(other_admin)}") as beta,
    ):
        assert (await recv_json(acme))["type"] == "welcome"
        assert (await recv_json(beta))["type"] == "welcome"
        await asyncio.to_thread(
            run_manage, env, "fire_event", "SystemNotification", "--tenant", "acme",
            "--message", "<b>maintenance</b> tonight",
        )  # fmt: skip
        frame = await recv_json(acme, timeout=3)
        assert frame["type"] == "event"
        assert frame["event"] == "SystemNotification"
        assert frame["channel"] == f"tenant.{staff.tenant_id}"
        assert frame["message"] == "<b>maintenance</b> tonight"  # escaping is the page's job
        assert await nothing_arrives(beta)


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
