"""hotspot/coa.py: a cut-off whose process died before the Disconnect-Request went out is sent
again by the periodic task. The router's CoA port is a real UDP listener."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string
from pyrad import packet

from hotspot.models import HotspotSession
from tests.factories import HotspotSessionFactory, HotspotUserFactory, PackageFactory, RouterFactory
from tests.hotspot.radius_harness import CoaListener, next_address, wait_for
from tests.liveserver import run_shell, server_env

pytestmark = pytest.mark.django_db(transaction=True)

# cut_off() in another OS process that dies right after the commit: its first on-commit hook
# (registered before cut_off's own) ends the process before the Disconnect-Request is sent.
DIES_AFTER_COMMIT = """
import os
from django.db import transaction
from hotspot import radius
from hotspot.models import HotspotUser
with transaction.atomic():
    transaction.on_commit(lambda: os._exit(0))
    radius.cut_off(hotspot_user=HotspotUser.objects.get(username="erin"), reason="time")
"""


@pytest.fixture
def router_port():
    address = next_address()
    listener = CoaListener(address, "cut-secret")
    yield address, listener
    listener.close()


def resend(*, after: timedelta = timedelta(0)) -> int:
    task = import_string(settings.PERIODIC_TASKS["hotspot_resend_disconnects"]["task"])
    return task(now=timezone.now() + after)


def test_a_cut_off_left_sent_by_a_dead_process_is_sent_again(router_port):
    address, listener = router_port
    router = RouterFactory(address=address, secret="cut-secret", coa_port=listener.port)
    user = HotspotUserFactory(package=PackageFactory(tenant=router.tenant), username="erin")
    session = HotspotSessionFactory(router=router, hotspot_user=user, username="erin")

    run_shell(server_env(redis_url=None), DIES_AFTER_COMMIT)
    session.refresh_from_db()
    assert session.disconnect == HotspotSession.Disconnect.SENT and session.disconnect_sent_at
    assert listener.received == []  # the process died: nothing reached the router

    assert resend() == 0  # not yet: the sender may still be retrying
    grace = timedelta(seconds=settings.RADIUS_COA_RESEND_AFTER + 1)
    assert resend(after=grace) == 1
    wait_for(lambda: listener.received, 30, "the Disconnect-Request")
    (request,) = listener.received
    assert request["code"] == packet.DisconnectRequest and request["signed"]
    assert (request["User-Name"], request["Acct-Session-Id"]) == ("erin", session.acct_session_id)
    session.refresh_from_db()
    assert session.disconnect == HotspotSession.Disconnect.ACKED
    assert resend(after=grace * 2) == 0  # answered: never sent again


def test_only_active_sessions_still_sent_are_resent(router_port):
    address, listener = router_port
    router = RouterFactory(address=address, secret="cut-secret", coa_port=listener.port)
    long_ago = timezone.now() - timedelta(hours=1)
    sent = {"disconnect": HotspotSession.Disconnect.SENT, "disconnect_sent_at": long_ago}
    HotspotSessionFactory(router=router, status=HotspotSession.Status.CLOSED, **sent)
    HotspotSessionFactory(router=router, disconnect=HotspotSession.Disconnect.NAKED)
    HotspotSessionFactory(router=router)
    stuck = HotspotSessionFactory(router=router, **sent)

    assert resend() == 1
    assert [r["Acct-Session-Id"] for r in listener.received] == [stuck.acct_session_id]
