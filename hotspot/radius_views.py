"""Internal endpoints FreeRADIUS's rlm_rest calls (hotspot/freeradius.py writes its config).

Not for browsers or API clients: every call must carry RADIUS_API_TOKEN (HTTP Basic, user
`freeradius`); anything else is a 403 with no detail. Firewall /radius/ from the outside
(docs/radius.md). The two lookups are plain functions of (Authorization header, query) so the
ASGI fast path (hotspot/radius_asgi.py) and these Django views answer exactly alike.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
from collections.abc import Callable, Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config.metrics import observe_radius

from . import radius, radius_cache

log = logging.getLogger(__name__)


def token_ok(authorization: str) -> bool:
    expected = settings.RADIUS_API_TOKEN
    if not expected or not authorization.startswith("Basic "):
        return False
    try:
        user, _, given = base64.b64decode(authorization[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return user == "freeradius" and hmac.compare_digest(given.encode(), expected.encode())


def _router_id(query: Mapping[str, str]) -> int | None:
    try:
        value = int(query.get("router", ""))
    except ValueError:
        return None
    return value if 0 < value < 2**63 else None


def _body(data: dict) -> bytes:
    return json.dumps(data).encode()


Answer = tuple[int, bytes, str]  # status, body, the reason of a reject ("" otherwise)


def counted(kind: str, answer: Callable[[], Answer]) -> tuple[int, bytes]:
    """Run `answer`, counting its outcome in hotspot_radius_requests_total (raised: error)."""
    try:
        status, body, reason = answer()
    except Exception:
        observe_radius(kind, 500)
        raise
    observe_radius(kind, status, reason)
    return status, body


def answer_client(authorization: str, query: Mapping[str, str]) -> tuple[int, bytes]:
    """Dynamic client lookup: 200 with the client's definition, 404 for an unknown address."""
    return counted("client", lambda: _client(authorization, query))


def _client(authorization: str, query: Mapping[str, str]) -> Answer:
    if not token_ok(authorization):
        return 403, b"", ""
    try:
        address = str(ipaddress.ip_address(query.get("address", "").strip()))
    except ValueError:
        return 400, _body({"error": "address must be an IP address"}), ""
    found = radius.client_for_address(address)
    if found is None:
        return 404, b"", ""
    return 200, _body(found), ""


def answer_authorize(authorization: str, query: Mapping[str, str]) -> tuple[int, bytes]:
    """200: the password FreeRADIUS checks (PAP/CHAP) and the reply; 401: reject + message."""
    return counted("authorize", lambda: _authorize(authorization, query))


def _authorize(authorization: str, query: Mapping[str, str]) -> Answer:
    if not token_ok(authorization):
        return 403, b"", ""
    router_id = _router_id(query)
    username = query.get("username", "")
    if router_id is None or not username or len(username) > 253:
        return 400, _body({"error": "router and username are required"}), ""
    if "\x00" in username:  # PostgreSQL refuses NUL in text (a 500 before)
        return 400, _body({"error": "username holds a NUL byte"}), ""
    decision = radius.authorize(router_id=router_id, username=username)
    if decision.accept:
        return 200, _body(decision.attributes), ""
    return 401, _body(decision.attributes), decision.reason


#: path → handler, for the ASGI fast path
#: path → (kind, handler), for the ASGI fast path (which counts the answer after its retry)
FAST_HANDLERS: dict[str, tuple[str, Callable[[str, Mapping[str, str]], Answer]]] = {
    "/radius/client/": ("client", _client),
    "/radius/authorize/": ("authorize", _authorize),
}


def _respond(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="application/json")


@csrf_exempt
@require_GET
def client_view(request: HttpRequest) -> HttpResponse:
    return _respond(*answer_client(request.headers.get("Authorization", ""), request.GET))


@csrf_exempt
@require_GET
def authorize_view(request: HttpRequest) -> HttpResponse:
    return _respond(*answer_authorize(request.headers.get("Authorization", ""), request.GET))


@csrf_exempt
@require_POST
def accounting_view(request: HttpRequest) -> HttpResponse:
    """204 once applied (200 naming the cached answers it changed, for FreeRADIUS to drop);
    400 for a packet we cannot use (FreeRADIUS logs it, no retry loop)."""
    try:
        response = _accounting(request)
    except Exception:
        observe_radius("accounting", 500)
        raise
    observe_radius("accounting", response.status_code)
    return response


def _accounting(request: HttpRequest) -> HttpResponse:
    if not token_ok(request.headers.get("Authorization", "")):
        return HttpResponse(status=403)
    router_id = _router_id(request.GET)
    if router_id is None:
        return JsonResponse({"error": "router is required"}, status=400)
    try:
        with radius_cache.collect() as dropped:
            radius.account(router_id=router_id, data=request.POST)
    except radius.BadAccounting as exc:
        log.warning("Accounting from router %s refused: %s", router_id, exc)
        return JsonResponse({"error": str(exc)}, status=400)
    if dropped:  # answers this packet changed: FreeRADIUS drops them from its cache
        return JsonResponse({"control:Hotspot-Drop-Key": dropped})
    return HttpResponse(status=204)
