"""The socket endpoints' metrics (notifications/realtime/metering.py): open sockets by endpoint
and role, frames sent, 4408 overflows, resumes; read as this process's /metrics would report."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from config import metrics
from notifications.realtime.protocol import TOO_SLOW_MESSAGE
from tests.notifications.test_portal_consumer import make_payment, open_for
from tests.notifications.wsutil import committed_db, connect_user, expect_close, group_send
from tests.pusher.test_consumer import authorize, established, open_socket, subscribe

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


def read(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def open_sockets(endpoint: str, role: str) -> float:
    return read("hotspot_sockets_open", endpoint=endpoint, role=role)


def frames(endpoint: str) -> float:
    metrics.sample()  # what the sampler (or a scrape) does: the tallies into the counter
    return read("hotspot_socket_frames_sent_total", endpoint=endpoint)


async def until(condition, what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_socket_counts_while_open_and_its_frames_are_counted(tenant_admin):
    before, sent = open_sockets("notifications", "tenant_admin"), frames("notifications")
    comm, _ = await connect_user(tenant_admin)
    assert open_sockets("notifications", "tenant_admin") == before + 1
    await comm.send_json_to({"action": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    assert frames("notifications") == sent + 2  # welcome, pong
    await comm.disconnect()
    assert open_sockets("notifications", "tenant_admin") == before


async def test_a_refused_handshake_never_counts_as_open():
    from tests.notifications.wsutil import communicator

    before = sum(open_sockets("notifications", r) for r in ("none", "staff", "tenant_admin"))
    comm = communicator()  # no session, no token
    connected, _ = await comm.connect(timeout=3)
    assert connected  # accepted, then closed with the reason
    await expect_close(comm, 4401)
    await comm.disconnect()
    after = sum(open_sockets("notifications", r) for r in ("none", "staff", "tenant_admin"))
    assert after == before


async def test_a_socket_cut_off_as_too_slow_is_counted_as_an_overflow(staff):
    before = read("hotspot_socket_overflows_total", endpoint="notifications")
    comm, _ = await connect_user(staff)
    # What the layer puts in a socket's inbox when it overflows.
    await group_send(f"user.{staff.pk}", dict(TOO_SLOW_MESSAGE))
    await expect_close(comm, 4408)
    await comm.disconnect()
    assert read("hotspot_socket_overflows_total", endpoint="notifications") == before + 1
    assert open_sockets("notifications", "staff") == 0


async def test_resumes_are_counted_by_outcome_with_the_events_replayed(staff, deliver):
    from channels.db import database_sync_to_async

    from notifications.events import catalog
    from notifications.events.broadcast import broadcast

    @database_sync_to_async
    def fire(n: int) -> list[int]:
        event = catalog.SystemNotification.create
        return [broadcast(event(tenant=staff.tenant, message=f"m{i}")).id for i in range(n)]

    replayed = read("hotspot_socket_replayed_events_total", endpoint="notifications")
    counts = {
        outcome: read("hotspot_socket_resumes_total", endpoint="notifications", outcome=outcome)
        for outcome in ("replayed", "coalesced")
    }
    ids = await fire(3)
    await deliver()  # published (numbered for replay) before anyone resumes
    comm, _ = await connect_user(staff)
    got = []
    for _ in range(2):  # the second, identical resume is coalesced: `resumed` alone
        await comm.send_json_to({"action": "resume", "last_id": ids[0]})
        while (frame := await comm.receive_json_from(timeout=5))["type"] != "resumed":
            if frame["type"] == "event":
                got.append(int(frame["id"]))
    await comm.disconnect()
    assert set(ids[1:]) <= set(got)
    assert read("hotspot_socket_replayed_events_total", endpoint="notifications") == replayed + len(
        got
    )
    for outcome in ("replayed", "coalesced"):
        assert (
            read("hotspot_socket_resumes_total", endpoint="notifications", outcome=outcome)
            == counts[outcome] + 1
        )


async def test_a_pusher_socket_counts_as_none_until_a_person_signs_for_it(tenant_admin):
    before_none = open_sockets("pusher", "none")
    before_admin = open_sockets("pusher", "tenant_admin")
    comm = await open_socket()
    socket_id = await established(comm)
    assert open_sockets("pusher", "none") == before_none + 1
    channel = f"private-tenant.{tenant_admin.tenant_id}"
    response = await authorize(tenant_admin, socket_id, channel)
    assert response.status_code == 200
    await subscribe(comm, socket_id, channel, response.json()["auth"])
    await until(lambda: open_sockets("pusher", "tenant_admin") == before_admin + 1, "the grant")
    assert open_sockets("pusher", "none") == before_none
    await comm.disconnect()
    assert open_sockets("pusher", "tenant_admin") == before_admin


async def test_a_portal_socket_counts_as_a_customer():
    before = open_sockets("portal", "customer")
    payment = await make_payment()
    comm = await open_for(payment)
    assert open_sockets("portal", "customer") == before + 1
    await comm.disconnect()
    assert open_sockets("portal", "customer") == before
