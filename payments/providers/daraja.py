"""Safaricom Daraja (Lipa na M-Pesa Online): OAuth token, STK push, STK query, callback parsing.

Base URL: settings.MPESA_API_URL (the simulator under /dev/mpesa/ in local settings). Each
tenant brings its own credentials (payments.models.DarajaCredentials).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from django.conf import settings

from .base import PaymentProvider, ProviderError, QueryResult, StartResult

logger = logging.getLogger("payments.daraja")

NAIROBI = ZoneInfo("Africa/Nairobi")
TOKEN_PATH = "/oauth/v1/generate?grant_type=client_credentials"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
# Renew a cached token this long before Daraja says it expires.
TOKEN_MARGIN_SECONDS = 60
# Daraja's "still waiting for the customer" answer to an STK query.
QUERY_IN_PROGRESS_CODES = {"500.001.1001"}

#: ResultCode → what the customer reads.
RESULT_SENTENCES = {
    "0": "Paid — you are online",
    "1": "Your M-Pesa balance is too low for this package.",
    "1001": "Another M-Pesa payment is in progress on this phone; finish it, then try again.",
    "1019": "The M-Pesa prompt expired before it was answered.",
    "1025": "M-Pesa could not send the prompt to your phone; try again.",
    "1032": "Cancelled on the phone",
    "1037": "Your phone could not be reached or did not answer the M-Pesa prompt.",
    "2001": "The M-Pesa PIN was wrong.",
    "9999": "M-Pesa could not send the prompt to your phone; try again.",
}
TIMED_OUT_SENTENCE = "Timed out: M-Pesa did not confirm the payment in time."


def result_sentence(code: Any, description: str = "") -> str:
    code = str(code).strip()
    if code in RESULT_SENTENCES:
        return RESULT_SENTENCES[code]
    detail = f": {description.strip()[:200]}" if description and description.strip() else ""
    return f"M-Pesa declined the payment (code {code}){detail}."


def timestamp(now: datetime | None = None) -> str:
    """YYYYMMDDHHMMSS in Nairobi time, as Daraja wants it."""
    return (now or datetime.now(NAIROBI)).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, ts: str) -> str:
    return base64.b64encode(f"{shortcode}{passkey}{ts}".encode()).decode()


def whole_amount(amount: Decimal) -> int:
    """Daraja takes whole shillings; a price with cents is refused before we get here."""
    if amount != amount.to_integral_value():
        raise ValueError("M-Pesa takes whole amounts only.")
    return int(amount)


# --- OAuth tokens, cached per (base URL, consumer key) in this process ---------------------

_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def clear_token_cache() -> None:
    with _tokens_lock:
        _tokens.clear()


class DarajaClient:
    """One tenant's Daraja account over HTTP; every failure is a ProviderError."""

    def __init__(
        self,
        *,
        consumer_key: str,
        consumer_secret: str,
        base_url: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.base_url = (base_url or settings.MPESA_API_URL).rstrip("/")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.timeout = timeout if timeout is not None else settings.MPESA_HTTP_TIMEOUT

    @property
    def _cache_key(self) -> tuple[str, str]:
        return (self.base_url, self.consumer_key)

    def token(self, *, renew: bool = False) -> str:
        with _tokens_lock:
            cached = _tokens.get(self._cache_key)
        if cached and not renew and cached[1] > time.monotonic():
            return cached[0]
        try:
            response = httpx.get(
                self.base_url + TOKEN_PATH,
                auth=(self.consumer_key, self.consumer_secret),
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(
                "M-Pesa is not answering right now; try again in a minute.", detail=repr(exc)
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                "M-Pesa cannot be reached right now; try again in a minute.", detail=repr(exc)
            ) from exc
        if response.status_code in (400, 401, 403):
            raise ProviderError(
                "This hotspot's M-Pesa account is not set up correctly; tell the attendant.",
                detail=f"OAuth {response.status_code}: {response.text[:300]}",
            )
        body = _json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        try:
            expires_in = int(str(body.get("expires_in", "3599")))
        except (ValueError, AttributeError):
            expires_in = 0
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise ProviderError(
                "M-Pesa is having trouble right now; try again in a minute.",
                detail=f"OAuth {response.status_code}: {response.text[:300]}",
            )
        lifetime = max(expires_in - TOKEN_MARGIN_SECONDS, 0)
        with _tokens_lock:
            _tokens[self._cache_key] = (token, time.monotonic() + lifetime)
        return token

    def post(self, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST with a bearer token, renewing it once on a 401. → (status, parsed JSON or None)."""
        for attempt in (0, 1):
            token = self.token(renew=attempt == 1)
            try:
                response = httpx.post(
                    self.base_url + path,
                    json=payload,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                )
            except httpx.TimeoutException as exc:
                raise ProviderError(
                    "M-Pesa did not answer in time. If your phone shows a prompt you may still "
                    "pay; this page will follow.",
                    ambiguous=True,
                    detail=repr(exc),
                ) from exc
            except httpx.HTTPError as exc:
                raise ProviderError(
                    "M-Pesa cannot be reached right now; try again in a minute.", detail=repr(exc)
                ) from exc
            if response.status_code == 401 and attempt == 0:
                logger.info("daraja %s: 401, renewing the token", path)
                continue
            return response.status_code, _json(response)
        raise AssertionError("unreachable")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("errorMessage") or body.get("ResponseDescription") or "")[:200]
    return ""


class DarajaProvider(PaymentProvider):
    name = "daraja"
    asynchronous = True

    def client(self, credentials: Any) -> DarajaClient:
        return DarajaClient(
            consumer_key=credentials.consumer_key, consumer_secret=credentials.consumer_secret
        )

    def start(self, *, payment: Any, credentials: Any, callback_url: str) -> StartResult:
        if credentials is None or not credentials.is_complete:
            raise ProviderError("This hotspot cannot take M-Pesa payments yet.")
        ts = timestamp()
        payload = {
            "BusinessShortCode": credentials.shortcode,
            "Password": stk_password(credentials.shortcode, credentials.passkey, ts),
            "Timestamp": ts,
            "TransactionType": credentials.transaction_type,
            "Amount": whole_amount(payment.amount),
            "PartyA": payment.phone,
            "PartyB": credentials.party_b,
            "PhoneNumber": payment.phone,
            "CallBackURL": callback_url,
            "AccountReference": payment.provider_reference[:12],
            "TransactionDesc": f"WiFi {payment.package.name}"[:13],
        }
        status, body = self.client(credentials).post(STK_PUSH_PATH, payload)
        if status >= 500:
            raise ProviderError(
                "M-Pesa could not take the request right now; you were not charged. Try again.",
                detail=f"STK push {status}: {body!r}"[:500],
            )
        if status != 200 or not isinstance(body, dict):
            if status == 200:  # a 200 we cannot read: the prompt may be on its way
                raise ProviderError(
                    "M-Pesa's answer was garbled. If your phone shows a prompt you may still "
                    "pay; this page will follow.",
                    ambiguous=True,
                    detail=f"STK push {status}: {body!r}"[:500],
                )
            message = _error_text(body) or f"error {status}"
            raise ProviderError(
                f"M-Pesa refused the request ({message}). You were not charged.",
                detail=f"STK push {status}: {body!r}"[:500],
            )
        checkout = body.get("CheckoutRequestID")
        code = str(body.get("ResponseCode", ""))
        if code != "0" or not isinstance(checkout, str) or not checkout:
            if code not in ("", "0"):
                raise ProviderError(
                    f"M-Pesa refused the request ({_error_text(body) or 'no reason'}). "
                    "You were not charged.",
                    detail=f"STK push: {body!r}"[:500],
                )
            raise ProviderError(
                "M-Pesa's answer was garbled. If your phone shows a prompt you may still pay; "
                "this page will follow.",
                ambiguous=True,
                detail=f"STK push: {body!r}"[:500],
            )
        return StartResult(
            state="pending",
            checkout_request_id=checkout[:64],
            merchant_request_id=str(body.get("MerchantRequestID", ""))[:64],
            customer_message=str(body.get("CustomerMessage", ""))[:200],
            raw=body,
        )

    def query(self, *, payment: Any, credentials: Any) -> QueryResult:
        if credentials is None or not credentials.is_complete or not payment.checkout_request_id:
            return QueryResult(state="pending", description="nothing to query")
        ts = timestamp()
        payload = {
            "BusinessShortCode": credentials.shortcode,
            "Password": stk_password(credentials.shortcode, credentials.passkey, ts),
            "Timestamp": ts,
            "CheckoutRequestID": payment.checkout_request_id,
        }
        status, body = self.client(credentials).post(STK_QUERY_PATH, payload)
        if isinstance(body, dict) and str(body.get("errorCode", "")) in QUERY_IN_PROGRESS_CODES:
            return QueryResult(state="pending", description=_error_text(body), raw=body)
        if status != 200 or not isinstance(body, dict) or "ResultCode" not in body:
            raise ProviderError(
                "M-Pesa could not say how the payment went.",
                ambiguous=True,
                detail=f"STK query {status}: {body!r}"[:500],
            )
        code = str(body["ResultCode"]).strip()
        description = str(body.get("ResultDesc", ""))[:300]
        state = "completed" if code == "0" else "failed"
        return QueryResult(state=state, result_code=code, description=description, raw=body)


# --- the callback ----------------------------------------------------------------------------


class CallbackError(ValueError):
    """The body is not a Daraja STK callback; nothing was changed."""


@dataclass(frozen=True)
class StkCallback:
    merchant_request_id: str
    checkout_request_id: str
    result_code: str
    result_desc: str
    amount: Decimal | None
    receipt_number: str
    transaction_date: str
    phone: str

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"


def parse_callback(body: Any) -> StkCallback:
    """Strict: Body.stkCallback with its ids, ResultCode and, on success, its metadata items."""
    if not isinstance(body, dict) or set(body) != {"Body"} or not isinstance(body["Body"], dict):
        raise CallbackError('The body must be {"Body": {"stkCallback": {...}}}.')
    callback = body["Body"].get("stkCallback")
    if not isinstance(callback, dict):
        raise CallbackError("Body.stkCallback is missing.")
    ids = {}
    for name in ("MerchantRequestID", "CheckoutRequestID"):
        value = callback.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 64:
            raise CallbackError(f"stkCallback.{name} must be a non-empty string.")
        ids[name] = value.strip()
    code = callback.get("ResultCode")
    if isinstance(code, bool) or not isinstance(code, int | str) or not str(code).strip().isdigit():
        raise CallbackError("stkCallback.ResultCode must be a number.")
    code = str(int(str(code).strip()))
    desc = callback.get("ResultDesc", "")
    if not isinstance(desc, str):
        raise CallbackError("stkCallback.ResultDesc must be a string.")
    items: dict[str, Any] = {}
    metadata = callback.get("CallbackMetadata")
    if code == "0":
        if not isinstance(metadata, dict) or not isinstance(metadata.get("Item"), list):
            raise CallbackError("A successful stkCallback must carry CallbackMetadata.Item.")
        for item in metadata["Item"]:
            if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
                raise CallbackError("Every CallbackMetadata item needs a Name.")
            items[item["Name"]] = item.get("Value")
        missing = {"Amount", "MpesaReceiptNumber", "TransactionDate", "PhoneNumber"} - set(items)
        if missing:
            raise CallbackError(f"CallbackMetadata lacks {', '.join(sorted(missing))}.")
    amount = None
    if "Amount" in items:
        raw_amount = items["Amount"]
        try:
            if isinstance(raw_amount, bool):
                raise InvalidOperation
            amount = Decimal(str(raw_amount))
        except (InvalidOperation, ValueError):
            raise CallbackError("CallbackMetadata Amount is not a number.") from None
        if not amount.is_finite():
            raise CallbackError("CallbackMetadata Amount is not a number.")
    return StkCallback(
        merchant_request_id=ids["MerchantRequestID"],
        checkout_request_id=ids["CheckoutRequestID"],
        result_code=code,
        result_desc=desc[:300],
        amount=amount,
        receipt_number=str(items.get("MpesaReceiptNumber", ""))[:32],
        transaction_date=str(items.get("TransactionDate", ""))[:20],
        phone=str(items.get("PhoneNumber", ""))[:20],
    )
