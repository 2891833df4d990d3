"""Accounting through a real FreeRADIUS: sessions, data used, duplicates, out of order, stale."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pyrad import packet

from hotspot import radius
from hotspot.models import MB, HotspotSession, HotspotUser
from tests.factories import HotspotUserFactory, PackageFactory, RouterFactory, TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]
MAC = "AA-BB-CC-00-11-22"


@pytest.fixture
def setup(nas, new_address):
    tenant = TenantFactory()
    router = RouterFactory(tenant=tenant, address=new_address(), secret="acct-secret")
    user = HotspotUserFactory(
        package=PackageFactory(tenant=tenant, data_limit_mb=1000), username="dave", password="pw"
    )
    return router, user, nas(router)


def counters(inp: int, out: int, time: int = 60) -> dict:
    return {
        "Acct_Input_Octets": inp % 2**32,
        "Acct_Input_Gigawords": inp // 2**32,
        "Acct_Output_Octets": out % 2**32,
        "Acct_Output_Gigawords": out // 2**32,
        "Acct_Session_Time": time,
    }


def used(user) -> int:
    return HotspotUser.objects.get(pk=user.pk).data_used_bytes


def test_start_interim_stop(setup):
    router, user, nas = setup
    reply = nas.account(
        "Start", "S1", "dave", Calling_Station_Id=MAC, Framed_IP_Address="10.5.50.7"
    )
    assert reply is not None and reply.code == packet.AccountingResponse
    session = HotspotSession.objects.get()
    assert (session.status, session.mac, session.ip, session.router_id) == (
        "active",
        MAC,
        "10.5.50.7",
        router.pk,
    )
    assert session.hotspot_user_id == user.pk and session.tenant_id == router.tenant_id

    nas.account("Interim-Update", "S1", "dave", **counters(3 * MB, 7 * MB))
    assert used(user) == 10 * MB
    assert HotspotUser.objects.get(pk=user.pk).data_used_mb == 10
    nas.account("Interim-Update", "S1", "dave", **counters(3 * MB, 7 * MB))  # duplicate
    assert used(user) == 10 * MB
    nas.account(
        "Stop", "S1", "dave", Acct_Terminate_Cause="User-Request", **counters(4 * MB, 8 * MB, 120)
    )
    session.refresh_from_db()
    assert (session.status, session.terminate_cause) == ("closed", "User-Request")
    assert (session.input_octets, session.output_octets, session.session_time) == (
        4 * MB,
        8 * MB,
        120,
    )
    assert used(user) == 12 * MB
    # a late interim (sent before the Stop) and a repeated Stop count nothing more
    nas.account("Interim-Update", "S1", "dave", **counters(3 * MB, 7 * MB))
    nas.account("Stop", "S1", "dave", **counters(4 * MB, 8 * MB, 120))
    session.refresh_from_db()
    assert session.status == "closed" and used(user) == 12 * MB


def test_stop_before_start(setup):
    _, user, nas = setup
    nas.account("Stop", "S2", "dave", **counters(MB, MB))
    session = HotspotSession.objects.get()
    assert session.status == "closed" and used(user) == 2 * MB
    nas.account("Start", "S2", "dave")
    session.refresh_from_db()
    assert session.status == "closed" and used(user) == 2 * MB


def test_gigawords_count(setup):
    _, user, nas = setup
    nas.account("Interim-Update", "S3", "dave", **counters(5 * 2**32 + 7, 2**32))
    assert used(user) == 6 * 2**32 + 7
    assert HotspotSession.objects.get().status == "active"  # an Interim without Start opens one


def test_sessions_of_two_routers_with_the_same_id_are_apart(setup, nas, new_address):
    router, user, first = setup
    other = RouterFactory(tenant=router.tenant, address=new_address(), secret="other")
    first.account("Interim-Update", "SAME", "dave", **counters(MB, 0))
    nas(other).account("Interim-Update", "SAME", "dave", **counters(MB, 0))
    assert HotspotSession.objects.count() == 2 and used(user) == 2 * MB


def test_unknown_user_session_is_recorded_without_usage(setup):
    _, user, nas = setup
    nas.account("Start", "S4", "mallory", **counters(MB, MB))
    session = HotspotSession.objects.get()
    assert session.hotspot_user_id is None and used(user) == 0


def test_accounting_on_closes_the_routers_sessions(setup):
    _, _, nas = setup
    nas.account("Start", "S5", "dave")
    nas.account("Accounting-On", "boot", "dave")
    assert HotspotSession.objects.get(acct_session_id="S5").status == "closed"


def test_stale_sessions_close_after_three_interim_intervals(setup):
    _, _, nas = setup
    nas.account("Start", "S6", "dave")
    session = HotspotSession.objects.get()
    interval = session.interim_interval
    heard = session.last_heard
    assert radius.close_stale_sessions(now=heard + timedelta(seconds=3 * interval - 1)) == 0
    assert radius.close_stale_sessions(now=heard + timedelta(seconds=3 * interval + 1)) == 1
    session.refresh_from_db()
    assert session.status == "stale" and session.terminate_cause == "Stale"
    assert radius.close_stale_sessions(now=timezone.now() + timedelta(days=1)) == 0
    nas.account("Stop", "S6", "dave", **counters(MB, 0))  # a late Stop still counts its data
    session.refresh_from_db()
    assert session.status == "closed" and session.input_octets == MB
