"""Real sockets against a live daphne process on the embedded default (in-memory layer)."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.factories import DEFAULT_PASSWORD
from tests.liveserver import (
    Browser,
    Daphne,
    cookie_header,
    expect_close,
    jwt_for,
    nothing_arrives,
    recv_json,
    run_manage,
    server_env,
)
from tests.notifications.wsutil import committed_db

pytestmark = [pytest.mark.live, committed_db]


@pytest.fixture(scope="module")
def memory_server(django_db_setup):
    """One daphne on the in-memory layer (the embedded default)."""
    (server,) = Daphne.start(server_env(redis_url=None))
    yield server
    server.stop()


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


@pytest.mark.parametrize("change", ["port", "scheme"])
async def test_a_page_on_another_port_or_scheme_of_the_same_host_is_refused(
    memory_server, staff, change
):
    """A page on http://127.0.0.1:<other port> must not read a victim's socket (issue 12)."""
    host, port = memory_server.http.removeprefix("http://").rsplit(":", 1)
    origin = f"http://{host}:{int(port) + 1}" if change == "port" else f"https://{host}:{port}"
    token = await jwt_for(staff)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{memory_server.ws}?token={token}", origin=origin) as ws:
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
