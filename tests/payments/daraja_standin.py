"""A Daraja stand-in: a real HTTP server (own thread, free port) speaking Daraja's formats.

OAuth (Basic auth → access_token/expires_in), STK push (validates every field, answers with
MerchantRequestID/CheckoutRequestID) and STK query (processing error until a result is set).
Faults are queued per path: `standin.fail(STK_PUSH_PATH, status, body)` answers the next call
with that; `body="timeout"` holds the answer longer than the client waits, `body="garbage"`
sends a non-JSON 200.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from payments.providers.daraja import STK_PUSH_PATH, STK_QUERY_PATH
from tests.liveserver import StandIn

OAUTH_PATH = "/oauth/v1/generate"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def callback_body(
    checkout_id: str,
    result_code: int = 0,
    *,
    merchant_id: str = "29115-34620561-1",
    amount: Any = 50,
    receipt: str = "NLJ7RT61SV",
    phone: int = 254712345678,
    desc: str = "The service request is processed successfully.",
) -> dict[str, Any]:
    """Daraja's STK callback, exactly as Safaricom documents it."""
    callback: dict[str, Any] = {
        "MerchantRequestID": merchant_id,
        "CheckoutRequestID": checkout_id,
        "ResultCode": result_code,
        "ResultDesc": desc,
    }
    if result_code == 0:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": amount},
                {"Name": "MpesaReceiptNumber", "Value": receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": 20191219102115},
                {"Name": "PhoneNumber", "Value": phone},
            ]
        }
    return {"Body": {"stkCallback": callback}}


class DarajaStandIn(StandIn):
    def __init__(self, *, expires_in: int = 3599, hold_seconds: float = 3.0) -> None:
        self.expires_in = expires_in
        self.hold_seconds = hold_seconds
        self.requests: list[dict[str, Any]] = []
        self.tokens: set[str] = set()
        self.faults: dict[str, deque] = defaultdict(deque)
        self.pushes: dict[str, dict[str, Any]] = {}
        self.results: dict[str, tuple[int, str]] = {}
        self._n = 0
        self._lock = threading.Lock()
        super().__init__()

    def fail(self, path: str, status: int, body: Any = None) -> None:
        self.faults[path].append((status, body))

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    # --- the server side ------------------------------------------------------------------

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        if body == "timeout":
            time.sleep(self.hold_seconds)
            body = {"errorMessage": "too late"}
        data = b"<html>oops" if body == "garbage" else json.dumps(body).encode()
        self.respond(handler, status, data, "application/json")

    def _error(self, handler: Any, status: int, code: str, message: str) -> None:
        self._send(
            handler, status, {"requestId": "1-2-3", "errorCode": code, "errorMessage": message}
        )

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        raw = self.body(handler)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = {
            "method": method,
            "path": parts.path,
            "query": parts.query,
            "headers": dict(handler.headers),
            "json": body,
        }
        with self._lock:
            self.requests.append(record)
            fault = self.faults[parts.path].popleft() if self.faults[parts.path] else None
        if fault is not None:
            self._send(handler, *fault)
            return
        if parts.path == OAUTH_PATH and method == "GET":
            self._oauth(handler, parts.query)
        elif parts.path == STK_PUSH_PATH and method == "POST":
            self._push(handler, body)
        elif parts.path == STK_QUERY_PATH and method == "POST":
            self._query(handler, body)
        else:
            self._error(handler, 404, "404.001.01", "Resource not found")

    def _bearer_ok(self, handler: Any) -> bool:
        header = handler.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    def _oauth(self, handler: Any, query: str) -> None:
        if query != "grant_type=client_credentials":
            return self._error(handler, 400, "400.008.02", "Invalid grant type passed")
        header = handler.headers.get("Authorization", "")
        try:
            key, _, secret = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            key = secret = ""
        if not header.startswith("Basic ") or not key or not secret:
            return self._error(handler, 400, "400.008.01", "Invalid Authentication passed")
        with self._lock:
            self._n += 1
            token = f"token-{self._n}"
            self.tokens.add(token)
        self._send(handler, 200, {"access_token": token, "expires_in": str(self.expires_in)})

    def _push(self, handler: Any, body: Any) -> None:
        if not self._bearer_ok(handler):
            return self._error(handler, 401, "404.001.04", "Invalid Access Token")
        if not isinstance(body, dict):
            return self._error(handler, 400, "400.002.05", "Invalid Request Payload")
        with self._lock:
            self._n += 1
            n = self._n
        checkout = f"ws_CO_01122026{n:010d}"
        self.pushes[checkout] = body
        self._send(
            handler,
            200,
            {
                "MerchantRequestID": f"29115-{n}-1",
                "CheckoutRequestID": checkout,
                "ResponseCode": "0",
                "ResponseDescription": "Success. Request accepted for processing",
                "CustomerMessage": "Success. Request accepted for processing",
            },
        )

    def _query(self, handler: Any, body: Any) -> None:
        if not self._bearer_ok(handler):
            return self._error(handler, 401, "404.001.04", "Invalid Access Token")
        checkout = (body or {}).get("CheckoutRequestID")
        if checkout not in self.results:
            return self._error(handler, 500, "500.001.1001", "The transaction is being processed")
        code, desc = self.results[checkout]
        self._send(
            handler,
            200,
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": "29115-1-1",
                "CheckoutRequestID": checkout,
                "ResultCode": str(code),
                "ResultDesc": desc,
            },
        )
