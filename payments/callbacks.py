"""`POST /payments/stk/callback/<secret>/`: Daraja's STK callback (Lipa na M-Pesa Online).

Daraja signs nothing, so a callback is accepted only on the URL carrying the payment's own
secret (built from PUBLIC_URL when the push was sent). Answers in Daraja's format
(`{"ResultCode": 0, "ResultDesc": "Accepted"}`); a forged secret is a 404, a malformed body a
400, and neither changes anything. Every call is logged on `payments.callback`.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.errors import InvalidTransition, NotFound

from . import services

logger = logging.getLogger("payments.callback")
MAX_BODY_BYTES = 16 * 1024


def _answer(status: int, code: int, desc: str) -> JsonResponse:
    return JsonResponse({"ResultCode": code, "ResultDesc": desc}, status=status)


@csrf_exempt
@require_POST
def stk_callback(request: HttpRequest, secret: str) -> JsonResponse:
    try:
        raw = request.body
    except RequestDataTooBig:
        return _answer(413, 1, "Body too large.")
    if len(raw) > MAX_BODY_BYTES:
        return _answer(413, 1, "Body too large.")
    if b"\x00" in raw or b"\\u0000" in raw:  # PostgreSQL refuses NUL in text and JSON
        logger.warning("mpesa callback rejected: body holds a NUL")
        return _answer(400, 1, "The body holds a NUL character.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        logger.warning("mpesa callback rejected: body is not JSON")
        return _answer(400, 1, "The body is not JSON.")
    try:
        result = services.payment_settle_stk_callback(secret=secret, body=body)
    except NotFound:
        return _answer(404, 1, "Unknown callback address.")
    except services.CallbackRejected as exc:
        return _answer(400, 1, exc.message)
    except InvalidTransition as exc:
        return _answer(409, 1, exc.message)
    logger.info(
        "mpesa callback %s: %s%s",
        result.payment.provider_reference,
        result.payment.status,
        " (repeat)" if result.duplicate else "",
    )
    return _answer(200, 0, "Accepted")
