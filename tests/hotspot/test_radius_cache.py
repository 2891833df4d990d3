"""FreeRADIUS answers repeated logins from its cache; every change that alters an answer drops it
before the change returns, so a disabled, expired, over-data or moved user is never let in.
Real FreeRADIUS (rlm_cache), real platform: the live server's authorize is only counted."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from pyrad import packet

from hotspot import radius, radius_cache, services
from hotspot.models import MB
from tenants import services as tenant_services
from tests.factories import HotspotUserFactory, PackageFactory, RouterFactory, TenantFactory
from tests.hotspot.radius_harness import reply_dict, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PASSWORD = "pw-cache-1"


@pytest.fixture
def asked(monkeypatch):
    """Usernames the platform was asked about (the live server runs in this process)."""
    calls: list[str] = []
    real = radius.authorize

    def counting(*, router_id, username, now=None):
        calls.append(username)
        return real(router_id=router_id, username=username, now=now)

    monkeypatch.setattr(radius, "authorize", counting)
    return calls


@pytest.fixture
def world(nas, new_address):
    tenant = TenantFactory()
    routers = [
        RouterFactory(tenant=tenant, address=new_address(), secret=f"cache-{i}") for i in (1, 2)
    ]
    package = PackageFactory(tenant=tenant, data_limit_mb=100, speed_limit="5M/2M")
    user = HotspotUserFactory(package=package, username="cara", password=PASSWORD)
    return {"tenant": tenant, "routers": routers, "user": user, "nas": [nas(r) for r in routers]}


def accepted(reply) -> bool:
    assert reply is not None, "FreeRADIUS did not answer"
    return reply.code == packet.AccessAccept


def test_a_repeated_login_is_answered_from_the_cache(world, asked):
    nas = world["nas"][0]
    first = nas.login("cara", PASSWORD)
    assert accepted(first)
    assert asked == ["cara"]
    second = nas.login("cara", PASSWORD)
    assert accepted(second)
    assert asked == ["cara"], "the second login asked the platform"
    one, two = reply_dict(first), reply_dict(second)
    # the same answer; Session-Timeout computed when answering, from the cached expiry
    assert {k: v for k, v in two.items() if k != "Session-Timeout"} == {
        k: v for k, v in one.items() if k != "Session-Timeout"
    }
    left = (world["user"].expires_at - timezone.now()).total_seconds()
    assert left - 3 <= two["Session-Timeout"] <= left + 1
    # the cache keeps the password check: a wrong one is still refused
    wrong = nas.login("cara", "not-it")
    assert wrong is not None and wrong.code == packet.AccessReject
    assert reply_dict(wrong) == {"Reply-Message": "Wrong password."}
    # each router has its own entry
    assert accepted(world["nas"][1].login("cara", PASSWORD))
    assert asked == ["cara", "cara"]


def test_disable_then_an_immediate_login_is_rejected(world, asked):
    nas = world["nas"]
    assert accepted(nas[0].login("cara", PASSWORD)) and accepted(nas[1].login("cara", PASSWORD))
    started = time.perf_counter()
    services.hotspot_user_disable(hotspot_user=world["user"], by=None)
    took = time.perf_counter() - started
    for client in nas:  # on every router of the tenant, the very next request
        reply = client.login("cara", PASSWORD)
        assert reply is not None and reply.code == packet.AccessReject
        assert reply_dict(reply)["Reply-Message"] == "Your access has been disabled."
    assert took < 5, f"disabling waited {took:.2f}s for the cache"


def test_password_change_drops_the_old_password(world):
    nas = world["nas"][0]
    assert accepted(nas.login("cara", PASSWORD))
    user = world["user"]
    user.password = "pw-cache-2"
    user.save()  # an admin's edit: no service, the model signal drops the answer
    old = nas.login("cara", PASSWORD)
    assert old is not None and old.code == packet.AccessReject
    assert accepted(nas.login("cara", "pw-cache-2"))


def test_renamed_user_no_longer_answers_under_the_old_name(world):
    nas = world["nas"][0]
    assert accepted(nas.login("cara", PASSWORD))
    user = world["user"]
    user.username = "cora"
    user.save()
    gone = nas.login("cara", PASSWORD)
    assert gone is not None and gone.code == packet.AccessReject
    assert reply_dict(gone)["Reply-Message"] == "Unknown user."
    assert accepted(nas.login("cora", PASSWORD))


def test_suspended_tenant_is_refused_at_once(world):
    nas = world["nas"][0]
    assert accepted(nas.login("cara", PASSWORD))
    tenant_services.tenant_suspend(tenant=world["tenant"], reason="unpaid", by=None)
    reply = nas.login("cara", PASSWORD)
    assert reply is not None and reply.code == packet.AccessReject
    assert reply_dict(reply)["Reply-Message"] == "This hotspot is not available right now."


def test_package_change_reaches_a_cached_user(world):
    nas = world["nas"][0]
    assert reply_dict(nas.login("cara", PASSWORD))["Mikrotik-Rate-Limit"] == "5M/2M"
    services.package_update(package=world["user"].package, data={"speed_limit": "8M/4M"}, by=None)
    assert reply_dict(nas.login("cara", PASSWORD))["Mikrotik-Rate-Limit"] == "8M/4M"


def test_removed_router_no_longer_lets_anyone_in(world):
    nas = world["nas"][0]
    assert accepted(nas.login("cara", PASSWORD))
    services.router_delete(router=world["routers"][0], by=None)
    reply = nas.login("cara", PASSWORD)  # FreeRADIUS may still know the client for a moment
    assert reply is None or reply.code == packet.AccessReject


def test_data_used_drops_the_answer_through_accounting(world):
    """Accounting answers name the keys to drop: the next Accept has the data left, and the
    login after the limit is used up is refused, on every router of the tenant."""
    nas = world["nas"]
    first = reply_dict(nas[0].login("cara", PASSWORD))
    assert first["Mikrotik-Total-Limit"] == 100 * MB
    assert accepted(nas[1].login("cara", PASSWORD))  # cached on the other router too
    nas[0].account("Start", "s-1", "cara")
    nas[0].account("Interim-Update", "s-1", "cara", Acct_Output_Octets=30 * MB)
    assert reply_dict(nas[1].login("cara", PASSWORD))["Mikrotik-Total-Limit"] == 70 * MB
    nas[0].account("Stop", "s-1", "cara", Acct_Output_Octets=100 * MB)
    for client in nas:
        reply = client.login("cara", PASSWORD)
        assert reply is not None and reply.code == packet.AccessReject
        assert reply_dict(reply)["Reply-Message"] == "Your data allowance is used up."


def test_usage_without_a_limit_keeps_the_cache(nas, new_address, asked):
    tenant = TenantFactory()
    router = RouterFactory(tenant=tenant, address=new_address(), secret="cache-free")
    HotspotUserFactory(
        package=PackageFactory(tenant=tenant, data_limit_mb=None), username="flo", password="pw"
    )
    client = nas(router)
    assert accepted(client.login("flo", "pw"))
    client.account("Start", "s-2", "flo")
    client.account("Interim-Update", "s-2", "flo", Acct_Output_Octets=30 * MB)
    assert accepted(client.login("flo", "pw"))
    assert asked == ["flo"]


def test_a_cached_answer_never_outlives_the_access(nas, new_address):
    tenant = TenantFactory()
    router = RouterFactory(tenant=tenant, address=new_address(), secret="cache-time")
    user = HotspotUserFactory(package=PackageFactory(tenant=tenant), username="tim", password="pw")
    user.expires_at = timezone.now() + timedelta(seconds=3)
    user.save()
    client = nas(router)
    assert accepted(client.login("tim", "pw"))
    expires = user.expires_at.timestamp()

    def refused():
        sent = time.time()
        reply = client.login("tim", "pw")
        assert reply is not None
        if reply.code == packet.AccessAccept:
            assert sent < expires, "accepted after the access ended"
            assert reply_dict(reply)["Session-Timeout"] <= expires - sent + 1
            return False
        assert reply_dict(reply)["Reply-Message"] == "Your access has expired."
        return True

    wait_for(refused, timeout=30, what="the expiry to refuse the login")


def test_a_drop_during_the_platforms_answer_is_not_undone(world, monkeypatch):
    """The race: a login read the user before the disable committed and answers after the drop.
    Its (old) Accept goes out, but is not stored: the next login is refused."""
    read, release = threading.Event(), threading.Event()
    real = radius.authorize

    def slow(*, router_id, username, now=None):
        decision = real(router_id=router_id, username=username, now=now)
        read.set()
        release.wait(10)  # the disable commits and drops meanwhile
        return decision

    monkeypatch.setattr(radius, "authorize", slow)
    nas = world["nas"][0]
    results = []
    racing = threading.Thread(target=lambda: results.append(nas.login("cara", PASSWORD)))
    racing.start()
    assert read.wait(30)
    monkeypatch.setattr(radius, "authorize", real)
    services.hotspot_user_disable(hotspot_user=world["user"], by=None)
    release.set()
    racing.join(30)
    assert results and accepted(results[0])  # read before the change: the old answer
    reply = nas.login("cara", PASSWORD)
    assert reply is not None and reply.code == packet.AccessReject
    assert reply_dict(reply)["Reply-Message"] == "Your access has been disabled."


def test_the_cache_listener_refuses_a_wrong_secret(freeradius):
    """Only the platform drops answers: a packet signed with another secret gets nothing."""
    import socket

    data, _ = radius_cache.build_request(7, radius_cache._vsa(2, "evil"), b"not-the-secret")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.5)
        sock.sendto(data, ("127.0.0.1", freeradius.cache_port))
        with pytest.raises(TimeoutError):
            sock.recvfrom(4096)


def test_a_lost_accounting_answer_still_drops(world):
    """Should the accounting answer naming the keys never reach FreeRADIUS, the drop is also
    sent off the request thread: the over-data user is refused all the same."""
    nas = world["nas"][0]
    assert accepted(nas.login("cara", PASSWORD))
    router = world["routers"][0]
    with radius_cache.collect() as keys:  # as the accounting view does; the answer is dropped
        radius.account(router_id=router.pk, data={
            "Acct-Status-Type": "Stop", "Acct-Session-Id": "s-9", "User-Name": "cara",
            "Acct-Output-Octets": str(100 * MB),
        })  # fmt: skip
    assert f"{router.pk}:cara" in keys

    def refused():
        reply = nas.login("cara", PASSWORD)
        return reply is not None and reply.code == packet.AccessReject

    # well within RADIUS_CACHE_TTL (30 s): not the entry lapsing on its own
    wait_for(refused, timeout=15, what="the background drop")
