"""A Daraja simulator under /dev/mpesa/ (local settings only): `make run` needs no M-Pesa account.

It speaks Daraja's endpoints and formats (OAuth, STK push, STK query) and keeps the prompts it
was sent in this process's memory. GET /dev/mpesa/ lists the pending prompts with "Enter PIN"
and "Cancel" (and a few other outcomes); pressing one sends the real callback, in Daraja's
format, to the CallBackURL of the push. A system check refuses MPESA_SIMULATOR outside local and
test settings, and the URLs are only mounted when it is on.

Async views on purpose: a push comes from a sync view of this same server; a sync simulator view
would wait for the one thread that sync views share (deadlock).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt

from .providers.daraja import NAIROBI

logger = logging.getLogger("payments.simulator")

TOKEN_SECONDS = 3599
PHONE_RE = re.compile(r"^254[17]\d{8}$")
TIMESTAMP_RE = re.compile(r"^\d{14}$")
#: the buttons of the prompt page: action → (ResultCode, ResultDesc)
OUTCOMES = {
    "pin": (0, "The service request is processed successfully."),
    "cancel": (1032, "Request cancelled by user"),
    "wrong-pin": (2001, "The initiator information is invalid."),
    "no-funds": (1, "The balance is insufficient for the transaction."),
    "no-answer": (1037, "DS timeout user cannot be reached"),
}
STK_FIELDS = (
    "BusinessShortCode",
    "Password",
    "Timestamp",
    "TransactionType",
    "Amount",
    "PartyA",
    "PartyB",
    "PhoneNumber",
    "CallBackURL",
    "AccountReference",
    "TransactionDesc",
)


@dataclass
class Prompt:
    checkout_request_id: str
    merchant_request_id: str
    shortcode: str
    phone: str
    amount: int
    account_reference: str
    description: str
    callback_url: str
    created: float = field(default_factory=time.time)
    result_code: int | None = None
    result_desc: str = ""
    receipt: str = ""
    callback_status: str = ""


_tokens: dict[str, float] = {}
_prompts: dict[str, Prompt] = {}
_counter = itertools.count(1)


def reset() -> None:
    _tokens.clear()
    _prompts.clear()


def _request_id() -> str:
    return f"{secrets.randbelow(90000) + 10000}-{secrets.randbelow(9 * 10**7) + 10**7}-1"


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        {"requestId": _request_id(), "errorCode": code, "errorMessage": message}, status=status
    )


def _authorized(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    expires = _tokens.get(header[7:].strip())
    return expires is not None and expires > time.time()


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    import json

    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def oauth(request: HttpRequest) -> JsonResponse:
    if request.GET.get("grant_type") != "client_credentials":
        return _error(400, "400.008.02", "Invalid grant type passed")
    header = request.headers.get("Authorization", "")
    try:
        decoded = base64.b64decode(header.removeprefix("Basic "), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    key, _, secret = decoded.partition(":")
    if not header.startswith("Basic ") or not key or not secret:
        return _error(400, "400.008.01", "Invalid Authentication passed")
    token = secrets.token_urlsafe(20)
    _tokens[token] = time.time() + TOKEN_SECONDS
    return JsonResponse({"access_token": token, "expires_in": str(TOKEN_SECONDS)})


def _check_password(body: dict[str, Any]) -> bool:
    """Password must be base64(shortcode + passkey + Timestamp) (any passkey here)."""
    try:
        decoded = base64.b64decode(str(body["Password"]), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    shortcode, ts = str(body["BusinessShortCode"]), str(body["Timestamp"])
    return (
        decoded.startswith(shortcode)
        and decoded.endswith(ts)
        and len(decoded) > len(shortcode + ts)
    )


def _authorized_json(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    """The JSON body of an authorized POST, or Daraja's error for what is wrong with it."""
    if request.method != "POST":
        return _error(405, "405.001", "Method not allowed")
    if not _authorized(request):
        return _error(401, "404.001.04", "Invalid Access Token")
    body = _json_body(request)
    if body is None:
        return _error(400, "400.002.05", "Invalid Request Payload")
    return body


@csrf_exempt
async def stk_push(request: HttpRequest) -> JsonResponse:
    body = _authorized_json(request)
    if isinstance(body, JsonResponse):
        return body
    for name in STK_FIELDS:
        if name not in body or body[name] in ("", None):
            return _error(400, "400.002.02", f"Bad Request - Invalid {name}")
    if not TIMESTAMP_RE.match(str(body["Timestamp"])):
        return _error(400, "400.002.02", "Bad Request - Invalid Timestamp")
    if not _check_password(body):
        return _error(400, "400.002.02", "Bad Request - Invalid Password")
    if body["TransactionType"] not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        return _error(400, "400.002.02", "Bad Request - Invalid TransactionType")
    amount = body["Amount"]
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        return _error(400, "400.002.02", "Bad Request - Invalid Amount")
    phone = str(body["PhoneNumber"])
    if not PHONE_RE.match(phone) or str(body["PartyA"]) != phone:
        return _error(400, "400.002.02", "Bad Request - Invalid PhoneNumber")
    if not str(body["CallBackURL"]).startswith(("http://", "https://")):
        return _error(400, "400.002.02", "Bad Request - Invalid CallBackURL")
    n = next(_counter)
    prompt = Prompt(
        checkout_request_id=f"ws_CO_{datetime.now(NAIROBI):%d%m%Y%H%M%S}{n:06d}",
        merchant_request_id=_request_id(),
        shortcode=str(body["BusinessShortCode"]),
        phone=phone,
        amount=amount,
        account_reference=str(body["AccountReference"])[:12],
        description=str(body["TransactionDesc"])[:13],
        callback_url=str(body["CallBackURL"]),
    )
    _prompts[prompt.checkout_request_id] = prompt
    message = "Success. Request accepted for processing"
    return JsonResponse(
        {
            "MerchantRequestID": prompt.merchant_request_id,
            "CheckoutRequestID": prompt.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": message,
            "CustomerMessage": message,
        }
    )


@csrf_exempt
async def stk_query(request: HttpRequest) -> JsonResponse:
    body = _authorized_json(request)
    if isinstance(body, JsonResponse):
        return body
    for name in ("BusinessShortCode", "Password", "Timestamp", "CheckoutRequestID"):
        if not body.get(name):
            return _error(400, "400.002.02", f"Bad Request - Invalid {name}")
    if not _check_password(body):
        return _error(400, "400.002.02", "Bad Request - Invalid Password")
    prompt = _prompts.get(str(body["CheckoutRequestID"]))
    if prompt is None:
        return _error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
    if prompt.result_code is None:
        return _error(500, "500.001.1001", "The transaction is being processed")
    return JsonResponse(
        {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": prompt.merchant_request_id,
            "CheckoutRequestID": prompt.checkout_request_id,
            "ResultCode": str(prompt.result_code),
            "ResultDesc": prompt.result_desc,
        }
    )


def callback_body(prompt: Prompt) -> dict[str, Any]:
    """Daraja's STK callback for a prompt that has its result."""
    callback: dict[str, Any] = {
        "MerchantRequestID": prompt.merchant_request_id,
        "CheckoutRequestID": prompt.checkout_request_id,
        "ResultCode": prompt.result_code,
        "ResultDesc": prompt.result_desc,
    }
    if prompt.result_code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(prompt.amount)},
                {"Name": "MpesaReceiptNumber", "Value": prompt.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(f"{datetime.now(NAIROBI):%Y%m%d%H%M%S}")},
                {"Name": "PhoneNumber", "Value": int(prompt.phone)},
            ]
        }
    return {"Body": {"stkCallback": callback}}


async def prompts_page(request: HttpRequest) -> HttpResponse:
    prompts = sorted(_prompts.values(), key=lambda p: p.created, reverse=True)
    html = render_to_string(
        "payments/simulator.html",
        {
            "pending": [p for p in prompts if p.result_code is None],
            "done": [p for p in prompts if p.result_code is not None][:20],
            "outcomes": OUTCOMES,
        },
        request=request,
    )
    return HttpResponse(html)


async def answer_prompt(
    request: HttpRequest, checkout_request_id: str, action: str
) -> HttpResponse:
    """The phone's owner pressed a button: settle the prompt and send Daraja's callback."""
    if request.method != "POST":
        return HttpResponse(status=405)
    prompt = _prompts.get(checkout_request_id)
    if prompt is None or action not in OUTCOMES:
        return HttpResponse("No such prompt.", status=404)
    if prompt.result_code is None:
        prompt.result_code, prompt.result_desc = OUTCOMES[action]
        if prompt.result_code == 0:
            alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
            prompt.receipt = "S" + "".join(secrets.choice(alphabet) for _ in range(9))
        try:
            async with httpx.AsyncClient(timeout=15) as client:
                response = await client.post(prompt.callback_url, json=callback_body(prompt))
            prompt.callback_status = f"{response.status_code} {response.text[:120]}"
        except httpx.HTTPError as exc:
            prompt.callback_status = f"failed: {exc!r}"[:160]
        logger.info("simulator %s → %s: %s", checkout_request_id, action, prompt.callback_status)
    return redirect("mpesa_simulator:prompts")
