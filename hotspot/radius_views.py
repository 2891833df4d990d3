"""Internal endpoints FreeRADIUS's rlm_rest calls (hotspot/freeradius.py writes its config).

Not for browsers or API clients: every call must carry RADIUS_API_TOKEN (HTTP Basic, user
`freeradius`); anything else is a 403 with no detail. Firewall /radius/ from the outside
(docs/radius.md).
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import radius

log = logging.getLogger(__name__)


def _token_ok(request: HttpRequest) -> bool:
    expected = settings.RADIUS_API_TOKEN
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return user == "freeradius" and hmac.compare_digest(given.encode(), expected.encode())


def _refused() -> HttpResponse:
    return HttpResponse(status=403)


def _router_id(request: HttpRequest) -> int | None:
    try:
        value = int(request.GET.get("router", ""))
    except ValueError:
        return None
    return value if 0 < value < 2**63 else None


def _json(data: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(json.dumps(data), status=status, content_type="application/json")


@csrf_exempt
@require_GET
def client_view(request: HttpRequest) -> HttpResponse:
    """Dynamic client lookup: 200 with the client's definition, 404 for an unknown address."""
    if not _token_ok(request):
        return _refused()
    try:
        address = str(ipaddress.ip_address(request.GET.get("address", "").strip()))
    except ValueError:
        return JsonResponse({"error": "address must be an IP address"}, status=400)
    found = radius.client_for_address(address)
    if found is None:
        return HttpResponse(status=404)
    return _json(found)


@csrf_exempt
@require_GET
def authorize_view(request: HttpRequest) -> HttpResponse:
    """200: the password FreeRADIUS checks (PAP/CHAP) and the reply; 401: reject + message."""
    if not _token_ok(request):
        return _refused()
    router_id = _router_id(request)
    username = request.GET.get("username", "")
    if router_id is None or not username or len(username) > 253:
        return JsonResponse({"error": "router and username are required"}, status=400)
    decision = radius.authorize(router_id=router_id, username=username)
    return _json(decision.attributes, status=200 if decision.accept else 401)


@csrf_exempt
@require_POST
def accounting_view(request: HttpRequest) -> HttpResponse:
    """204 once applied; 400 for a packet we cannot use (FreeRADIUS logs it, no retry loop)."""
    if not _token_ok(request):
        return _refused()
    router_id = _router_id(request)
    if router_id is None:
        return JsonResponse({"error": "router is required"}, status=400)
    try:
        radius.account(router_id=router_id, data=request.POST)
    except radius.BadAccounting as exc:
        log.warning("Accounting from router %s refused: %s", router_id, exc)
        return JsonResponse({"error": str(exc)}, status=400)
    return HttpResponse(status=204)
