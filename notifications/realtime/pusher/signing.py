"""Pusher's signatures: subscriptions (`/broadcasting/auth`) and HTTP API requests."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from django.conf import settings

from notifications.realtime.presence import member_info
from notifications.realtime.protocol import loads

MAX_TIMESTAMP_SKEW = 600  # seconds, as Pusher's own API


def sign(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """Pusher's subscription signature: HMAC-SHA256 of `socket_id:channel[:channel_data]`."""
    message = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return hmac.new(
        settings.PUSHER_APP_SECRET.encode(), message.encode(), hashlib.sha256
    ).hexdigest()


def auth_string(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    return f"{settings.PUSHER_APP_KEY}:{sign(socket_id, channel, channel_data)}"


def valid_auth(socket_id: str, channel: str, auth: Any, channel_data: str | None = None) -> bool:
    """Whether `auth` ("<key>:<signature>") was issued for this socket, channel (and data)."""
    if not isinstance(auth, str):
        return False
    key, _, signature = auth.partition(":")
    expected = auth_string(socket_id, channel, channel_data)
    return hmac.compare_digest(f"{key}:{signature}".encode(), expected.encode())


def presence_channel_data(user: Any) -> str:
    """Laravel's channel_data for a presence member: user_id (the user's key) and user_info."""
    return json.dumps({"user_id": user.pk, "user_info": member_info(user)}, separators=(",", ":"))


def parse_channel_data(raw: str) -> tuple[int, dict[str, Any]] | None:
    """(user id, member info) from signed channel_data; None unless the shape is right.

    The user id must be a platform user id (an integer, or its digits as a string): the presence
    scope is shared with /ws/notifications/, where members are platform users.
    """
    try:
        data = loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    user_id = data.get("user_id")
    if isinstance(user_id, str) and user_id.isdigit() and len(user_id) <= 18:
        user_id = int(user_id)
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < 2**63:
        return None
    info = data.get("user_info")
    if info is None:
        info = {}
    if not isinstance(info, dict):
        return None
    member = {**info, "id": user_id}
    member.setdefault("name", str(member.get("username") or user_id))  # lists show a name
    return user_id, member


class PublishRefused(Exception):
    """A publish request the API answers with `status` and `message` (nothing stored)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def request_signature(method: str, path: str, params: dict[str, str]) -> str:
    """Pusher's request signature: HMAC-SHA256 of "METHOD\\npath\\nsorted query" (no signature)."""
    query = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "auth_signature")
    message = f"{method}\n{path}\n{query}".encode()
    return hmac.new(settings.PUSHER_APP_SECRET.encode(), message, hashlib.sha256).hexdigest()


def check_request_auth(method: str, path: str, params: dict[str, str], body: bytes) -> None:
    """Raise PublishRefused(401) unless the request is signed with the app secret, recently."""
    for name in ("auth_key", "auth_timestamp", "auth_version", "auth_signature"):
        if not params.get(name):
            raise PublishRefused(401, f"Missing {name}.")
    if not hmac.compare_digest(params["auth_key"].encode(), settings.PUSHER_APP_KEY.encode()):
        raise PublishRefused(401, "Unknown auth_key.")
    if params["auth_version"] != "1.0":
        raise PublishRefused(401, "auth_version must be 1.0.")
    try:
        stamp = int(params["auth_timestamp"])
    except ValueError:
        raise PublishRefused(401, "auth_timestamp must be unix seconds.") from None
    if abs(time.time() - stamp) > MAX_TIMESTAMP_SKEW:
        raise PublishRefused(
            401, f"Timestamp expired: more than {MAX_TIMESTAMP_SKEW} s from server time."
        )
    if body and params.get("body_md5") != hashlib.md5(body).hexdigest():  # noqa: S324 (protocol)
        raise PublishRefused(401, "body_md5 does not match the body.")
    expected = request_signature(method, path, params)
    if not hmac.compare_digest(params["auth_signature"].encode(), expected.encode()):
        raise PublishRefused(401, "Invalid signature: check the app secret.")
