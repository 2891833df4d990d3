"""Cut-offs and RADIUS events: Disconnect-Requests reach the router's CoA port; events reach only
their tenant (router events only its admins). FreeRADIUS and the CoA listener are real."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from pyrad import packet

from hotspot import radius, services
from hotspot.models import MB, HotspotSession, HotspotUser
from tests.factories import (
    HotspotUserFactory,
    PackageFactory,
    RouterFactory,
    TenantAdminFactory,
    TenantFactory,
)
from tests.hotspot.radius_harness import CoaListener, wait_for
from tests.notifications.conftest import make_listener, run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]
ADMINS = ["tenant_admin"]


@pytest.fixture
def coa():
    made = []

    def make(address: str, secret: str, answer: str = "ack") -> CoaListener:
        listener = CoaListener(address, secret, answer)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.close()


@pytest.fixture
def world(nas, new_address, coa):
    """Tenant A (a router with a CoA listener, user erin, 10 MB) and tenant B."""
    a, b = TenantFactory(), TenantFactory()
    admin = TenantAdminFactory(tenant=a)
    address = new_address()
    listener = coa(address, "cut-secret")
    router = RouterFactory(tenant=a, address=address, secret="cut-secret", coa_port=listener.port)
    user = HotspotUserFactory(
        package=PackageFactory(tenant=a, data_limit_mb=10), username="erin", password="pw-e"
    )
    return {"A": a, "B": b, "admin": admin, "router": router, "user": user,
            "coa": listener, "nas": nas(router)}  # fmt: skip


async def listeners_for(world):
    """Listeners on tenant A, tenant B and system.admin, after what happened so far went out."""
    from channels.layers import get_channel_layer

    from notifications.events import relay as publisher

    await publisher.publish_pending()
    layer = get_channel_layer()
    return {
        "A": await make_listener(layer, f"tenant.{world['A'].pk}"),
        "B": await make_listener(layer, f"tenant.{world['B'].pk}"),
        "sys": await make_listener(layer, "system.admin"),
    }


async def received(listeners, deliver):
    await deliver()
    out = {}
    for key, listener in listeners.items():
        out[key] = [
            (json.loads(m["text"])["event"], m["roles"], json.loads(m["text"])["data"])
            for m in await listener.collect()
            if m["type"] == "notify.event"
        ]
    return out


async def received_until(listeners, deliver, event: str, timeout: float = 30):
    """As received(), gathered until tenant A has `event`: the live server's own relay may be
    publishing it the moment the test's deliver() runs (then it lands after that probe)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out = {key: [] for key in listeners}
    while True:
        for key, items in (await received(listeners, deliver)).items():
            out[key] += items
        if any(name == event for name, _, _ in out["A"]) or loop.time() > deadline:
            return out
        await asyncio.sleep(0.2)


def octets(total: int) -> dict:
    return {"Acct_Input_Octets": total // 2, "Acct_Output_Octets": total - total // 2}


async def test_data_80_percent_then_used_up_cuts_off_through_coa(world, deliver):
    listeners = await listeners_for(world)
    nas = world["nas"]
    reply = await asyncio.to_thread(nas.login, "erin", "pw-e")
    assert reply.code == packet.AccessAccept
    await asyncio.to_thread(nas.account, "Start", "C1", "erin")
    await asyncio.to_thread(nas.account, "Interim-Update", "C1", "erin", **octets(8 * MB))
    await asyncio.to_thread(nas.account, "Interim-Update", "C1", "erin", **octets(9 * MB))
    got = await received(listeners, deliver)
    names = [(n, r) for n, r, _ in got["A"]]
    assert names == [
        ("RouterFirstSeen", ADMINS),
        ("HotspotSessionStarted", None),
        ("DataLimitWarning", None),
    ]
    assert got["A"][2][2]["percent"] == 80 and got["A"][2][2]["username"] == "erin"
    assert got["B"] == [] and got["sys"] == []

    await asyncio.to_thread(nas.account, "Interim-Update", "C1", "erin", **octets(10 * MB + 1))
    coa = world["coa"]
    await asyncio.to_thread(wait_for, lambda: coa.received, 30, "a Disconnect-Request")
    request = coa.received[0]
    assert request["code"] == packet.DisconnectRequest and request["signed"]
    assert (request["User-Name"], request["Acct-Session-Id"]) == ("erin", "C1")
    session = await run(HotspotSession.objects.get)(acct_session_id="C1")
    await asyncio.to_thread(
        wait_for,
        lambda: HotspotSession.objects.get(pk=session.pk).disconnect == "acked",
        30,
        "the ACK to be recorded",
    )
    got = await received(listeners, deliver)
    assert [(n, r) for n, r, _ in got["A"]] == [("HotspotUserCutOff", None)]
    assert got["A"][0][2]["reason"] == "data"
    assert got["B"] == [] and got["sys"] == []
    # and the next login is refused with the reason
    reply = await asyncio.to_thread(nas.login, "erin", "pw-e")
    assert reply.code == packet.AccessReject


@pytest.mark.parametrize(("answer", "state"), [("nak", "naked"), ("silence", "no_answer")])
async def test_disable_sends_disconnect_and_a_refusal_is_visible(world, deliver, answer, state):
    world["coa"].answer = answer
    nas = world["nas"]
    await asyncio.to_thread(nas.account, "Start", "D1", "erin")
    listeners = await listeners_for(world)
    await run(services.hotspot_user_disable)(hotspot_user=world["user"], by=world["admin"])
    coa = world["coa"]
    if answer == "silence":  # retried: RADIUS_COA_RETRIES tries
        await asyncio.to_thread(wait_for, lambda: len(coa.received) >= 3, 60, "three tries")
    else:
        await asyncio.to_thread(wait_for, lambda: coa.received, 30, "a Disconnect-Request")
    await asyncio.to_thread(
        wait_for,
        lambda: HotspotSession.objects.get(acct_session_id="D1").disconnect == state,
        60,
        f"the session to show {state}",
    )
    got = await received_until(listeners, deliver, "DisconnectFailed")
    names = [n for n, _, _ in got["A"]]
    assert names == ["HotspotUserDisabled", "DisconnectFailed"]
    failed = got["A"][1][2]
    assert failed["reason"] == ("nak" if answer == "nak" else "no_answer")
    assert failed["username"] == "erin" and failed["disconnect"] == state
    assert got["B"] == [] and got["sys"] == []


async def test_expiry_sweep_cuts_off_online_users(world, deliver):
    nas = world["nas"]
    await asyncio.to_thread(nas.account, "Start", "E1", "erin")
    user = world["user"]
    await run(HotspotUser.objects.filter(pk=user.pk).update)(
        starts_at=timezone.now() - timedelta(hours=2),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    listeners = await listeners_for(world)
    assert await run(services.expire_due_hotspot_users)() == 1
    coa = world["coa"]
    await asyncio.to_thread(wait_for, lambda: coa.received, 30, "a Disconnect-Request")
    assert coa.received[0]["Acct-Session-Id"] == "E1"
    got = await received(listeners, deliver)
    assert [n for n, _, _ in got["A"]] == ["HotspotUserExpired", "HotspotUserCutOff"]
    assert got["A"][1][2]["reason"] == "time"
    assert got["B"] == []


async def test_session_end_and_router_events_reach_only_their_tenant(world, deliver):
    nas = world["nas"]
    await asyncio.to_thread(nas.account, "Start", "F1", "erin")
    listeners = await listeners_for(world)
    await asyncio.to_thread(nas.account, "Stop", "F1", "erin", **octets(MB))
    router = await run(services.router_create)(
        tenant=world["A"], name="Second", address="192.0.2.99", secret="x", by=world["admin"]
    )
    await run(services.router_delete)(router=router, by=world["admin"])
    got = await received(listeners, deliver)
    assert [(n, r) for n, r, _ in got["A"]] == [
        ("HotspotSessionEnded", None),
        ("RouterAdded", ADMINS),
        ("RouterRemoved", ADMINS),
    ]
    assert "secret" not in json.dumps(got["A"])
    assert got["B"] == [] and got["sys"] == []


async def test_router_not_heard_from_is_reported_once(world, deliver):
    router = world["router"]
    await asyncio.to_thread(world["nas"].login, "erin", "pw-e")  # seen now
    listeners = await listeners_for(world)
    later = timezone.now() + timedelta(hours=1)
    assert await run(radius.find_silent_routers)(now=later) == 1
    assert await run(radius.find_silent_routers)(now=later) == 0
    # (the live server's relay, woken by the commit's NOTIFY, may be sending it as deliver() runs)
    got = await received_until(listeners, deliver, "RouterSilent")
    assert [(n, r) for n, r, _ in got["A"]] == [("RouterSilent", ADMINS)]
    assert got["A"][0][2]["router_id"] == router.pk and got["B"] == []
