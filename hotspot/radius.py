"""What FreeRADIUS asks the platform (hotspot/radius_views.py): clients, authorization, accounting.

Each function answers from one indexed query on its hot path; writes happen only when the
routers report something (accounting) or, throttled per process, to note a router's last seen.
"""

from __future__ import annotations

import ipaddress
import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tenants.models import Tenant

from . import signals
from .models import MB, HotspotSession, HotspotUser, Router

GIGAWORD = 2**32

#: Reply-Message texts the customer reads on the captive portal
MESSAGES = {
    "unknown": "Unknown user.",
    "password": "Wrong password.",
    "expired": "Your access has expired.",
    "disabled": "Your access has been disabled.",
    "data": "Your data allowance is used up.",
    "tenant": "This hotspot is not available right now.",
}


@dataclass
class Decision:
    accept: bool
    attributes: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


# --- routers seen ----------------------------------------------------------------------------

_seen_lock = threading.Lock()
_seen_at: dict[int, float] = {}
SEEN_WRITE_EVERY = 30.0  # seconds between last_seen writes per router per process


def client_for_address(address: str) -> dict[str, str] | None:
    """The dynamic-client definition FreeRADIUS caches for this source address, or None."""
    row = Router.objects.filter(address=address).values("pk", "secret").first()
    if row is None:
        return None
    note_router_seen(row["pk"])
    return {
        "control:FreeRADIUS-Client-IP-Address": address,
        "control:FreeRADIUS-Client-Secret": row["secret"],
        "control:FreeRADIUS-Client-Shortname": str(row["pk"]),
        "control:FreeRADIUS-Client-NAS-Type": "other",
        "control:FreeRADIUS-Client-Require-MA": "no",
    }


def note_router_seen(router_id: int, *, now: datetime | None = None) -> None:
    """Record that a router spoke; its first time ever sends router_first_seen."""
    mono = time.monotonic()
    with _seen_lock:
        last = _seen_at.get(router_id)
        if last is not None and mono - last < SEEN_WRITE_EVERY:
            return
        _seen_at[router_id] = mono
    now = now or timezone.now()
    with transaction.atomic():
        first = Router.objects.filter(pk=router_id, last_seen__isnull=True).update(last_seen=now)
        if first:
            router = Router.objects.select_related("tenant").get(pk=router_id)
            signals.router_first_seen.send(sender=Router, router=router)
        else:
            Router.objects.filter(pk=router_id).update(last_seen=now, silent_since=None)


def forget_seen() -> None:
    """Tests: forget which routers this process has noted."""
    with _seen_lock:
        _seen_at.clear()


# --- authorization ---------------------------------------------------------------------------

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def _bits(value: str) -> int | None:
    match = _RATE.match(value)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_rate_limit(speed: str) -> tuple[int, int] | None:
    """MikroTik "rx/tx" (router's view: rx = the customer's upload) → (up, down) bits/s."""
    parts = (speed or "").split()[0].split("/") if (speed or "").strip() else []
    if len(parts) != 2:
        return None
    up, down = _bits(parts[0]), _bits(parts[1])
    if up is None or down is None:
        return None
    return up, down


def _refusal(hotspot_user: HotspotUser | None, now: datetime) -> str:
    if hotspot_user is None:
        return "unknown"
    if hotspot_user.tenant.status != Tenant.Status.ACTIVE:
        return "tenant"
    if hotspot_user.status == HotspotUser.Status.DISABLED:
        return "disabled"
    if hotspot_user.status == HotspotUser.Status.EXPIRED or hotspot_user.expires_at <= now:
        return "expired"
    limit = hotspot_user.data_limit_bytes
    if limit is not None and hotspot_user.data_used_bytes >= limit:
        return "data"
    return ""


def authorize(*, router_id: int, username: str, now: datetime | None = None) -> Decision:
    """May `username` log in on this router? Accept carries what the router enforces."""
    now = now or timezone.now()
    hotspot_user = (
        HotspotUser.objects.select_related("package", "tenant")
        .filter(username=username, tenant__routers__pk=router_id)
        .first()
    )
    note_router_seen(router_id, now=now)
    reason = _refusal(hotspot_user, now)
    if reason:
        return Decision(False, {"reply:Reply-Message": MESSAGES[reason]}, reason)
    assert hotspot_user is not None
    package = hotspot_user.package
    seconds_left = max(1, math.ceil((hotspot_user.expires_at - now).total_seconds()))
    attrs: dict[str, Any] = {
        "control:Cleartext-Password": hotspot_user.password,
        # FreeRADIUS's cache computes Session-Timeout from this when it answers (whole seconds,
        # rounded down: a cached answer never outlives the access)
        "control:Hotspot-Expires-At": str(math.floor(hotspot_user.expires_at.timestamp())),
        "reply:Session-Timeout": str(seconds_left),
        "reply:Acct-Interim-Interval": str(settings.RADIUS_INTERIM_INTERVAL),
        "reply:WISPr-Session-Terminate-Time": hotspot_user.expires_at.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%S+00:00"
        ),
    }
    rates = parse_rate_limit(package.speed_limit)
    if rates:
        up, down = rates
        attrs["reply:Mikrotik-Rate-Limit"] = package.speed_limit.strip()
        attrs["reply:WISPr-Bandwidth-Max-Up"] = str(up)
        attrs["reply:WISPr-Bandwidth-Max-Down"] = str(down)
        attrs["reply:ChilliSpot-Bandwidth-Max-Up"] = str(max(1, up // 1000))
        attrs["reply:ChilliSpot-Bandwidth-Max-Down"] = str(max(1, down // 1000))
    limit = hotspot_user.data_limit_bytes
    if limit is not None:
        left = limit - hotspot_user.data_used_bytes
        attrs["reply:Mikrotik-Total-Limit"] = str(left % GIGAWORD)
        attrs["reply:Mikrotik-Total-Limit-Gigawords"] = str(left // GIGAWORD)
        # ChilliSpot has no gigawords attribute: it gets the 32-bit ceiling
        attrs["reply:ChilliSpot-Max-Total-Octets"] = str(min(left, GIGAWORD - 1))
    return Decision(True, attrs)


# --- accounting ------------------------------------------------------------------------------


class BadAccounting(ValueError):
    """The packet lacks what accounting needs (answered 400: FreeRADIUS logs it)."""


def _int(data: Any, name: str) -> int:
    value = data.get(name) or "0"
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadAccounting(f"{name} is not a number: {value!r}") from None
    if number < 0 or number >= GIGAWORD:
        raise BadAccounting(f"{name} is out of range: {value!r}")
    return number


def _ip(data: Any) -> str | None:
    """Framed-IP-Address, normalised; not an address is a 400 (PostgreSQL's inet would 500)."""
    value = (data.get("Framed-IP-Address") or "").strip()
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise BadAccounting(f"Framed-IP-Address is not an IP address: {value[:50]!r}") from None


def _octets(data: Any, direction: str) -> int:
    return _int(data, f"Acct-{direction}-Gigawords") * GIGAWORD + _int(
        data, f"Acct-{direction}-Octets"
    )


STATUS_TYPES = {"Start", "Interim-Update", "Alive", "Stop", "Accounting-On", "Accounting-Off"}


@transaction.atomic
def account(*, router_id: int, data: Any, now: datetime | None = None) -> HotspotSession | None:
    """Apply one Accounting-Request. Counters are cumulative per session, so a repeated or late
    packet moves nothing: only octets beyond what was already counted reach the user."""
    now = now or timezone.now()
    for name, value in data.items():  # PostgreSQL refuses NUL in text (a 500 before)
        if "\x00" in name or "\x00" in str(value):
            raise BadAccounting(f"{name[:40]!r} holds a NUL byte.")
    status_type = (data.get("Acct-Status-Type") or "").strip()
    if status_type not in STATUS_TYPES:
        raise BadAccounting(f"Unknown Acct-Status-Type {status_type!r}.")
    router = Router.objects.filter(pk=router_id).first()
    if router is None:
        raise BadAccounting("Unknown router.")
    note_router_seen(router.pk, now=now)
    if status_type in ("Accounting-On", "Accounting-Off"):  # the router rebooted
        for session in HotspotSession.objects.select_for_update().filter(
            router=router, status=HotspotSession.Status.ACTIVE
        ):
            _close(session, now=now, cause="NAS-Reboot", status=HotspotSession.Status.CLOSED)
        return None
    session_id = (data.get("Acct-Session-Id") or "").strip()[:64]
    username = (data.get("User-Name") or "").strip()[:64]
    if not session_id or not username:
        raise BadAccounting("Acct-Session-Id and User-Name are required.")
    input_octets, output_octets = _octets(data, "Input"), _octets(data, "Output")
    session_time = _int(data, "Acct-Session-Time")
    framed_ip = _ip(data)

    session = (
        HotspotSession.objects.select_for_update()
        .filter(router=router, acct_session_id=session_id)
        .first()
    )
    created = session is None
    if created:
        hotspot_user = HotspotUser.objects.filter(
            tenant_id=router.tenant_id, username=username
        ).first()
        session = HotspotSession.objects.create(
            tenant_id=router.tenant_id,
            router=router,
            hotspot_user=hotspot_user,
            username=username,
            acct_session_id=session_id,
            mac=(data.get("Calling-Station-Id") or "")[:32],
            ip=framed_ip,
            started_at=now - timedelta(seconds=session_time),
            last_heard=now,
            interim_interval=settings.RADIUS_INTERIM_INTERVAL,
        )
        if status_type != "Stop":
            signals.session_started.send(sender=HotspotSession, session=session)
    delta = _take_counters(session, input_octets, output_octets, session_time)
    if not session.mac and data.get("Calling-Station-Id"):
        session.mac = data["Calling-Station-Id"][:32]
    if not session.ip and framed_ip:
        session.ip = framed_ip
    if session.status == HotspotSession.Status.ACTIVE or status_type == "Stop":
        session.last_heard = max(session.last_heard, now)
    if status_type == "Stop":
        cause = (data.get("Acct-Terminate-Cause") or "")[:40]
        if session.status == HotspotSession.Status.ACTIVE:
            _close(session, now=now, cause=cause, status=HotspotSession.Status.CLOSED)
        else:  # a late Stop for a session closed as stale, or a repeated Stop
            session.status = HotspotSession.Status.CLOSED
            session.terminate_cause = session.terminate_cause or cause
            session.stopped_at = session.stopped_at or now
            if created:
                signals.session_ended.send(sender=HotspotSession, session=session)
    session.save()
    if delta and session.hotspot_user_id:
        _add_usage(session, delta)
    return session


def _take_counters(session: HotspotSession, inp: int, out: int, session_time: int) -> int:
    """Keep the highest counters seen; the octets newly counted (never negative)."""
    before = session.input_octets + session.output_octets
    session.input_octets = max(session.input_octets, inp)
    session.output_octets = max(session.output_octets, out)
    session.session_time = max(session.session_time, session_time)
    return session.input_octets + session.output_octets - before


def _close(session: HotspotSession, *, now: datetime, cause: str, status: str) -> None:
    session.status = status
    session.stopped_at = now
    session.terminate_cause = cause
    session.save()
    signals.session_ended.send(sender=HotspotSession, session=session)


def _add_usage(session: HotspotSession, delta: int) -> None:
    """Add octets to the user's data used; 80% and 100% of the limit are crossed once each."""
    hotspot_user = (
        HotspotUser.objects.select_for_update()
        .select_related("package", "tenant")
        .get(pk=session.hotspot_user_id)
    )
    before = hotspot_user.data_used_bytes
    hotspot_user.data_used_bytes = F("data_used_bytes") + delta
    hotspot_user.data_used_mb = (before + delta) // MB
    hotspot_user.save(update_fields=["data_used_bytes", "data_used_mb", "updated_at"])
    hotspot_user.data_used_bytes = before + delta
    limit = hotspot_user.data_limit_bytes
    if limit is None or limit <= 0:
        return
    warn_at = limit * settings.RADIUS_DATA_WARNING_PERCENT / 100
    if before < warn_at <= before + delta < limit:
        signals.data_limit_warning.send(
            sender=HotspotUser,
            hotspot_user=hotspot_user,
            percent=settings.RADIUS_DATA_WARNING_PERCENT,
        )
    if before < limit <= before + delta:
        cut_off(hotspot_user=hotspot_user, reason="data")


# --- cutting off -----------------------------------------------------------------------------


def cut_off(*, hotspot_user: HotspotUser, reason: str) -> int:
    """Tell every router holding a session of this user to disconnect it (after commit).

    Returns the number of sessions asked."""
    sessions = list(
        HotspotSession.objects.filter(
            hotspot_user_id=hotspot_user.pk, status=HotspotSession.Status.ACTIVE
        ).values_list("pk", flat=True)
    )
    # data used up is news even between sessions; an expiry only when someone was online
    if reason == "data" or (reason == "time" and sessions):
        signals.hotspot_user_cut_off.send(
            sender=HotspotUser, hotspot_user=hotspot_user, reason=reason
        )
    if sessions:
        HotspotSession.objects.filter(pk__in=sessions).update(
            disconnect=HotspotSession.Disconnect.SENT,
            disconnect_reason=reason,
            disconnect_sent_at=timezone.now(),
        )
        from .coa import disconnect_in_background

        transaction.on_commit(lambda: disconnect_in_background(sessions))
    return len(sessions)


def close_stale_sessions(*, now: datetime | None = None) -> int:
    """Close active sessions not heard from for three interim intervals (periodic task)."""
    now = now or timezone.now()
    candidates = HotspotSession.objects.filter(
        status=HotspotSession.Status.ACTIVE,
        last_heard__lt=now - timedelta(seconds=60),
    ).values_list("pk", "last_heard", "interim_interval")
    closed = 0
    for pk, last_heard, interval in list(candidates):
        if last_heard + timedelta(seconds=3 * max(interval, 1)) > now:
            continue
        with transaction.atomic():
            session = (
                HotspotSession.objects.select_for_update()
                .filter(pk=pk, status=HotspotSession.Status.ACTIVE)
                .first()
            )
            if session is None:
                continue
            _close(session, now=now, cause="Stale", status=HotspotSession.Status.STALE)
            closed += 1
    return closed


def find_silent_routers(*, now: datetime | None = None) -> int:
    """Routers heard from before but not for RADIUS_ROUTER_SILENT_AFTER seconds: one event each
    per silence (periodic task)."""
    now = now or timezone.now()
    limit = now - timedelta(seconds=settings.RADIUS_ROUTER_SILENT_AFTER)
    count = 0
    for router in Router.objects.select_related("tenant").filter(
        last_seen__lt=limit, silent_since__isnull=True
    ):
        with transaction.atomic():
            if Router.objects.filter(pk=router.pk, silent_since__isnull=True).update(
                silent_since=now
            ):
                signals.router_silent.send(sender=Router, router=router)
                count += 1
    return count
