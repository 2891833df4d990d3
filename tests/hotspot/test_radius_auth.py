"""Access-Request → real FreeRADIUS → /radius/ → Access-Accept/Reject (issue 14 matrix)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pyrad import packet

from hotspot.models import MB, HotspotUser
from tenants.models import Tenant
from tests.factories import HotspotUserFactory, PackageFactory, RouterFactory, TenantFactory
from tests.hotspot.radius_harness import reply_dict

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PASSWORD = "pw-right-1"


def make_user(tenant, status="active", username="alice", **package_kw):
    package = PackageFactory(
        tenant=tenant, **{"data_limit_mb": 100, "speed_limit": "5M/2M", **package_kw}
    )
    user = HotspotUserFactory(package=package, username=username, password=PASSWORD)
    now = timezone.now()
    if status == "expired":
        user.starts_at, user.expires_at = now - timedelta(hours=2), now - timedelta(hours=1)
        user.status = HotspotUser.Status.EXPIRED
    elif status == "expired_by_time":  # not swept yet: the clock says it is over
        user.starts_at, user.expires_at = now - timedelta(hours=2), now - timedelta(seconds=1)
    elif status == "disabled":
        user.status = HotspotUser.Status.DISABLED
    elif status == "over_data":
        user.data_used_bytes = 100 * MB
        user.data_used_mb = 100
    user.save()
    return user


@pytest.fixture
def world(new_address):
    """Two tenants with two and one routers, each with a user called alice."""
    a, b = TenantFactory(slug="ta"), TenantFactory(slug="tb")
    routers = {
        "a1": RouterFactory(tenant=a, address=new_address(), secret="secret-a1"),
        "a2": RouterFactory(tenant=a, address=new_address(), secret="secret-a2"),
        "b1": RouterFactory(tenant=b, address=new_address(), secret="secret-b1"),
    }
    return a, b, routers


STATUS_MESSAGE = {
    "expired": "Your access has expired.",
    "expired_by_time": "Your access has expired.",
    "disabled": "Your access has been disabled.",
    "over_data": "Your data allowance is used up.",
}


@pytest.mark.parametrize("chap", [False, True], ids=["pap", "chap"])
@pytest.mark.parametrize(
    "status", ["active", "expired", "expired_by_time", "disabled", "over_data"]
)
def test_matrix(nas, world, status, chap):
    a, b, routers = world
    make_user(a, status=status)
    for name, router in routers.items():
        client = nas(router)
        right = client.login("alice", PASSWORD, chap=chap)
        wrong = client.login("alice", "not-it", chap=chap)
        assert right is not None and wrong is not None, name
        if name == "b1":  # tenant B's router: tenant A's alice does not exist there
            assert right.code == packet.AccessReject
            assert reply_dict(right)["Reply-Message"] == "Unknown user."
            continue
        if status == "active":
            assert right.code == packet.AccessAccept, (name, reply_dict(right))
            assert wrong.code == packet.AccessReject
            assert reply_dict(wrong) == {"Reply-Message": "Wrong password."}
        else:
            for reply in (right, wrong):
                assert reply.code == packet.AccessReject
                assert reply_dict(reply) == {"Reply-Message": STATUS_MESSAGE[status]}


def test_same_username_in_two_tenants_each_on_its_own_routers(nas, world):
    a, b, routers = world
    make_user(a, username="bob")
    HotspotUserFactory(package=PackageFactory(tenant=b), username="bob", password="b-password")
    assert nas(routers["a1"]).login("bob", PASSWORD).code == packet.AccessAccept
    assert nas(routers["b1"]).login("bob", PASSWORD).code == packet.AccessReject
    assert nas(routers["b1"]).login("bob", "b-password").code == packet.AccessAccept
    assert nas(routers["a2"]).login("bob", "b-password").code == packet.AccessReject


def test_unknown_user(nas, world):
    reply = nas(world[2]["a1"]).login("nobody", PASSWORD, chap=True)
    assert reply.code == packet.AccessReject and reply_dict(reply) == {
        "Reply-Message": "Unknown user."
    }


def test_accept_carries_what_the_router_enforces(nas, world):
    a, _, routers = world
    user = make_user(a)
    user.data_used_bytes = 30 * MB
    user.save()
    reply = nas(routers["a1"]).login("alice", PASSWORD)
    attrs = reply_dict(reply)
    left_s = (user.expires_at - timezone.now()).total_seconds()
    assert left_s - 30 <= attrs["Session-Timeout"] <= left_s + 1
    assert attrs["Acct-Interim-Interval"] == 300
    assert attrs["Mikrotik-Rate-Limit"] == "5M/2M"
    assert attrs["Mikrotik-Total-Limit"] == 70 * MB and attrs["Mikrotik-Total-Limit-Gigawords"] == 0
    assert attrs["WISPr-Bandwidth-Max-Up"] == 5_000_000
    assert attrs["WISPr-Bandwidth-Max-Down"] == 2_000_000
    assert attrs["ChilliSpot-Bandwidth-Max-Up"] == 5000
    assert attrs["ChilliSpot-Max-Total-Octets"] == 70 * MB
    assert attrs["WISPr-Session-Terminate-Time"].endswith("+00:00")


def test_gigawords_and_unlimited(nas, world):
    a, _, routers = world
    make_user(a, username="big", data_limit_mb=10 * 1024)  # 10 GiB
    make_user(a, username="free", data_limit_mb=None, speed_limit="")
    big = reply_dict(nas(routers["a1"]).login("big", PASSWORD))
    assert big["Mikrotik-Total-Limit-Gigawords"] == 2
    assert big["Mikrotik-Total-Limit"] == 10 * 1024 * MB - 2 * 2**32
    free = reply_dict(nas(routers["a1"]).login("free", PASSWORD))
    assert "Mikrotik-Total-Limit" not in free and "Mikrotik-Rate-Limit" not in free
    assert "Session-Timeout" in free


@pytest.mark.parametrize("status", [Tenant.Status.SUSPENDED, Tenant.Status.PENDING])
def test_inactive_tenant_refuses_every_login(nas, world, status):
    a, _, routers = world
    make_user(a)
    Tenant.objects.filter(pk=a.pk).update(status=status, suspension_reason="unpaid")
    reply = nas(routers["a1"]).login("alice", PASSWORD)
    assert reply.code == packet.AccessReject
    assert reply_dict(reply) == {"Reply-Message": "This hotspot is not available right now."}


def test_unknown_router_and_wrong_secret_get_nothing(nas, world, new_address):
    a, _, routers = world
    make_user(a)

    class Stranger:
        address, secret = new_address(), "secret-a1"

    silent = nas(Stranger)
    silent.timeout = 1
    assert silent.login("alice", PASSWORD) is None
    wrong_secret = nas(routers["a1"], secret="not-the-secret")
    wrong_secret.timeout = 1
    assert wrong_secret.login("alice", PASSWORD) is None  # reply fails its authenticator


def test_router_first_seen_sets_last_seen(nas, world):
    a, _, routers = world
    make_user(a)
    assert routers["a1"].last_seen is None
    nas(routers["a1"]).login("alice", PASSWORD)
    routers["a1"].refresh_from_db()
    assert routers["a1"].last_seen is not None
