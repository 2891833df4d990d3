"""RFC 5176 Disconnect-Request to the router that holds a session, with retries.

The outcome lands on the session (`disconnect`: acked / naked / no_answer) and a refusal or
silence sends hotspot.signals.disconnect_failed, so the tenant sees it.

The request goes out after commit, from a thread of the process that made the change. If that
process dies first, the session stays "sent": `resend_stuck_disconnects` (the periodic task
`hotspot_resend_disconnects`) sends it again once RADIUS_COA_RESEND_AFTER has passed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone
from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from . import signals
from .models import HotspotSession

log = logging.getLogger(__name__)
DICTIONARY_PATH = Path(__file__).with_name("radius_dictionary")


@cache
def dictionary() -> Dictionary:
    """The attributes the platform speaks (shared with the tests and bench/radius.py)."""
    return Dictionary(str(DICTIONARY_PATH))


def send_disconnect(*, address: str, port: int, secret: str, username: str, session_id: str) -> str:
    """One Disconnect-Request: "acked", "naked" or "no_answer" (after the retries)."""
    client = Client(server=address, secret=secret.encode(), dict=dictionary(), coaport=port)
    client.timeout = settings.RADIUS_COA_TIMEOUT
    client.retries = settings.RADIUS_COA_RETRIES
    request = client.CreateCoAPacket(code=packet.DisconnectRequest)
    request["User-Name"] = username
    request["Acct-Session-Id"] = session_id
    try:
        reply = client.SendPacket(request)
    except (Timeout, OSError) as exc:
        log.warning("Disconnect-Request to %s:%s: no answer (%s)", address, port, exc)
        return "no_answer"
    finally:
        if client._socket is not None:  # pyrad keeps one socket per client
            client._socket.close()
    return "acked" if reply.code == packet.DisconnectACK else "naked"


def disconnect_session(*, session_id: int) -> str:
    """Ask the session's router to end it and record the answer; the outcome."""
    session = (
        HotspotSession.objects.select_related("router", "tenant").filter(pk=session_id).first()
    )
    if session is None or session.router is None:
        return "no_answer"
    router = session.router
    outcome = send_disconnect(
        address=router.address,
        port=router.coa_port,
        secret=router.secret,
        username=session.username,
        session_id=session.acct_session_id,
    )
    state = {
        "acked": HotspotSession.Disconnect.ACKED,
        "naked": HotspotSession.Disconnect.NAKED,
        "no_answer": HotspotSession.Disconnect.NO_ANSWER,
    }[outcome]
    with transaction.atomic():
        HotspotSession.objects.filter(pk=session.pk).update(disconnect=state)
        session.disconnect = state
        if outcome != "acked":
            reason = "nak" if outcome == "naked" else "no_answer"
            signals.disconnect_failed.send(sender=HotspotSession, session=session, reason=reason)
    return outcome


def disconnect_sessions(session_ids: Iterable[int]) -> dict[int, str]:
    return {pk: disconnect_session(session_id=pk) for pk in session_ids}


def disconnect_in_background(session_ids: Iterable[int]) -> threading.Thread:
    """After commit: send the requests off the request thread (retries take seconds)."""
    ids = list(session_ids)

    def run() -> None:
        try:
            disconnect_sessions(ids)
        except Exception:
            log.exception("Disconnect-Requests for sessions %s failed", ids)
        finally:
            close_old_connections()

    thread = threading.Thread(target=run, name="radius-disconnect", daemon=True)
    thread.start()
    return thread


def resend_stuck_disconnects(*, now: datetime | None = None) -> int:
    """Send again every cut-off still "sent" after RADIUS_COA_RESEND_AFTER seconds (periodic
    task): the process that was to send it died, or its answer was never recorded. Returns
    the number of sessions asked."""
    now = now or timezone.now()
    stuck = Q(status=HotspotSession.Status.ACTIVE, disconnect=HotspotSession.Disconnect.SENT) & (
        Q(disconnect_sent_at__isnull=True)
        | Q(disconnect_sent_at__lte=now - timedelta(seconds=settings.RADIUS_COA_RESEND_AFTER))
    )
    ids = list(HotspotSession.objects.filter(stuck).values_list("pk", flat=True)[:100])
    # Stamp them first (the same condition): a second sweep does not take them again.
    taken = [
        pk
        for pk in ids
        if HotspotSession.objects.filter(stuck, pk=pk).update(disconnect_sent_at=now) == 1
    ]
    for pk in taken:
        try:
            disconnect_session(session_id=pk)
        except Exception:  # one bad router must not stop the others
            log.exception("Disconnect-Request for session %s failed", pk)
    return len(taken)
