"""Pusher Channels protocol 7 over the same pipeline: `/app/<key>` and `POST /broadcasting/auth`.

Existing Laravel Echo / pusher-js clients switch to this platform by changing host, port and key
(docs/pusher.md). Nothing here decides who may see what: a Pusher channel `private-<group>` is the
layer group `<group>`, and `notifications.auth.may_join` is the rule, exactly as on
`/ws/notifications/`. Events are the same `notify.event` messages; the Pusher frame wraps the
pre-serialized `/ws/notifications/` frame as its `data` string.

A Pusher socket connects anonymously and proves each subscription with the HMAC signature that
`/broadcasting/auth` issued. That endpoint also sends the socket a `pusher.grant` (who signed it)
through the layer, so the socket joins its user's and session's groups (revocation closes reach
it) and knows the role (role-restricted events are dropped until the grant says otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import error_body

from .auth import (
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_RECONNECT,
    CLOSE_UNAUTHENTICATED,
    may_join,
    session_group,
    user_group,
)
from .consumers import FRAME_BURST, FRAME_RATE, new_socket_id
from .context import SOCKET_ID_RE
from .layers import LayerEventDispatchMixin

logger = logging.getLogger(__name__)

PROTOCOL_VERSIONS = frozenset({"5", "6", "7"})
ACTIVITY_TIMEOUT = 120  # seconds; the client pings after this much silence
MAX_FRAME_BYTES = 10_240  # Pusher's message size limit
CHANNEL_RE = re.compile(r"^private-(tenant\.\d{1,18}|user\.\d{1,18}|system\.admin)$")

# Pusher error codes (https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/)
ERR_APP_KEY = 4001  # application does not exist: close, do not reconnect
ERR_PROTOCOL = 4007  # unsupported protocol version: close, do not reconnect
ERR_UNAUTHORIZED = 4009  # connection not authorized: close, do not reconnect
ERR_OVER_CAPACITY = 4100  # over capacity: reconnect after back-off
ERR_RECONNECT = 4200  # generic reconnect immediately
ERR_INVALID = 4300  # bad frame (socket stays open)
ERR_RATE = 4301  # too many frames

#: Our close codes (docs/protocol.md) → the Pusher code that makes pusher-js do the same thing.
CLOSE_TO_PUSHER = {
    CLOSE_UNAUTHENTICATED: ERR_UNAUTHORIZED,
    CLOSE_FORBIDDEN: ERR_UNAUTHORIZED,
    CLOSE_RECONNECT: ERR_RECONNECT,
    4408: ERR_RECONNECT,  # too slow: reconnect, missed events come back through the inbox
    CLOSE_RATE_LIMITED: ERR_OVER_CAPACITY,
}


def channel_group(channel: Any) -> str | None:
    """The layer group of a Pusher channel name (`private-tenant.3` → `tenant.3`), else None."""
    if not isinstance(channel, str):
        return None
    found = CHANNEL_RE.match(channel)
    return found.group(1) if found else None


def sign(socket_id: str, channel: str) -> str:
    """Pusher's subscription signature: HMAC-SHA256 of `socket_id:channel` with the app secret."""
    message = f"{socket_id}:{channel}".encode()
    return hmac.new(settings.PUSHER_APP_SECRET.encode(), message, hashlib.sha256).hexdigest()


def auth_string(socket_id: str, channel: str) -> str:
    return f"{settings.PUSHER_APP_KEY}:{sign(socket_id, channel)}"


def valid_auth(socket_id: str, channel: str, auth: Any) -> bool:
    """Whether `auth` ("<key>:<signature>") was issued for this socket and channel."""
    if not isinstance(auth, str):
        return False
    key, _, signature = auth.partition(":")
    expected = auth_string(socket_id, channel)
    return hmac.compare_digest(f"{key}:{signature}".encode(), expected.encode())


def grant_group(socket_id: str) -> str:
    """Internal group of one Pusher socket, where `/broadcasting/auth` sends its grants."""
    return f"pusher.{socket_id}"


def _frame(event: str, data: Any, channel: str | None = None) -> str:
    body: dict[str, Any] = {"event": event}
    if channel is not None:
        body["channel"] = channel
    body["data"] = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return json.dumps(body, separators=(",", ":"))


class PusherConsumer(LayerEventDispatchMixin, AsyncWebsocketConsumer):
    """`/app/<key>`: the Pusher protocol 7 face of the event stream (docs/pusher.md)."""

    async def connect(self) -> None:
        self._closed = False
        self.subscribed: dict[str, str] = {}  # layer group → Pusher channel
        self.grants: dict[int, str | None] = {}  # user id → role (from /broadcasting/auth)
        self.role: str | None = None
        await self.accept()
        key = self.scope["url_route"]["kwargs"].get("key", "")
        if not settings.PUSHER_APP_KEY or not hmac.compare_digest(
            key.encode(), settings.PUSHER_APP_KEY.encode()
        ):
            await self._fail(ERR_APP_KEY, f"App key {key[:40]} not in this cluster.")
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        protocol = (query.get("protocol") or ["7"])[0]
        if protocol not in PROTOCOL_VERSIONS:
            await self._fail(ERR_PROTOCOL, f"Unsupported protocol version {protocol[:10]}.")
            return
        self.socket_id = new_socket_id()
        self.groups = [grant_group(self.socket_id)]  # discarded by Channels on disconnect
        await self.channel_layer.group_add(self.groups[0], self.channel_name)
        # A browser on the same site also sends its session cookie: use it when it is valid.
        auth = self.scope.get("socket_auth")
        if auth is not None and auth.error is None:
            internal = session_group(auth.session_key) if auth.session_key else None
            await self._grant(auth.user.pk, auth.user.role, internal)
        self._tokens = float(FRAME_BURST)
        self._last_frame = time.monotonic()
        await self._send(
            _frame(
                "pusher:connection_established",
                {"socket_id": self.socket_id, "activity_timeout": ACTIVITY_TIMEOUT},
            )
        )

    async def disconnect(self, code: int) -> None:
        self._closed = True

    # -- channel-layer messages ----------------------------------------------------------------

    async def notify_event(self, message: dict) -> None:
        """Wrap the pre-serialized frame as a Pusher event of the subscribed channel."""
        if self._closed or not self.subscribed:
            return
        roles = message.get("roles")
        if roles is not None and self.role not in roles:
            return
        exclude = message.get("exclude")
        if exclude is not None and exclude == self.socket_id:
            return
        text = message["text"]
        try:
            frame = json.loads(text)
            channel = self.subscribed.get(frame["channel"])
            name = frame["event"]
        except (ValueError, KeyError, TypeError):
            logger.warning("dropping a malformed event frame")
            return
        if channel is not None:
            await self._send(_frame(name, text, channel))

    async def notify_close(self, message: dict) -> None:
        code = message.get("code")
        pusher_code = CLOSE_TO_PUSHER.get(code, ERR_UNAUTHORIZED)
        await self._fail(pusher_code, str(message.get("reason") or "Connection closed."))

    async def pusher_grant(self, message: dict) -> None:
        """`/broadcasting/auth` signed a channel for this socket on behalf of a user."""
        await self._grant(message["user_id"], message.get("role"), message.get("session_group"))

    async def _grant(self, user_id: int, role: str | None, session: str | None) -> None:
        if user_id not in self.grants:
            self.grants[user_id] = role
            extra = [user_group(user_id)]
            if session and session.startswith("session."):
                extra.append(session)
            for group in extra:
                if group not in self.groups:
                    await self.channel_layer.group_add(group, self.channel_name)
                    self.groups.append(group)
        # One person per socket: if two accounts signed for it, role-restricted events stop.
        roles = set(self.grants.values())
        self.role = roles.pop() if len(roles) == 1 else None

    # -- client frames -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closed:
            return
        if not self._take_token():
            await self._fail(ERR_RATE, "Too many frames.")
            return
        if text_data is None or len(text_data.encode("utf-8")) > MAX_FRAME_BYTES:
            await self._error(ERR_INVALID, f"Frames are JSON text up to {MAX_FRAME_BYTES} bytes.")
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self._error(ERR_INVALID, "The frame is not valid JSON.")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
            await self._error(ERR_INVALID, "A frame is a JSON object with an event.")
            return
        event = frame["event"]
        data = frame.get("data")
        if isinstance(data, str):  # some clients send data as a JSON string
            try:
                data = json.loads(data)
            except ValueError:
                data = None
        if event == "pusher:ping":
            await self._send(_frame("pusher:pong", {}))
        elif event == "pusher:pong":
            return
        elif event == "pusher:subscribe":
            await self._subscribe(data if isinstance(data, dict) else {})
        elif event == "pusher:unsubscribe":
            await self._unsubscribe(data if isinstance(data, dict) else {})
        elif event.startswith("client-"):
            await self._error(ERR_INVALID, "Client events are not enabled.")
        else:
            await self._error(ERR_INVALID, f"Unknown event {event[:60]}.")

    async def _subscribe(self, data: dict) -> None:
        channel = data.get("channel")
        group = channel_group(channel)
        if group is None:
            await self._subscription_error(
                channel,
                "Unknown channel: use private-tenant.<id>, private-user.<id> or "
                "private-system.admin.",
                404,
            )
            return
        if not valid_auth(self.socket_id, channel, data.get("auth")):
            await self._subscription_error(channel, "Invalid signature for this socket.", 401)
            return
        if group not in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        self.subscribed[group] = channel
        await self._send(_frame("pusher_internal:subscription_succeeded", {}, channel))

    async def _unsubscribe(self, data: dict) -> None:
        group = channel_group(data.get("channel"))
        if group is not None:
            # The layer membership stays (closes for that group still apply); events stop.
            self.subscribed.pop(group, None)

    # -- helpers -------------------------------------------------------------------------------

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = float(getattr(settings, "NOTIFICATIONS_WS_RATE", FRAME_RATE))
        burst = float(getattr(settings, "NOTIFICATIONS_WS_BURST", FRAME_BURST))
        self._tokens = min(burst, self._tokens + (now - self._last_frame) * rate)
        self._last_frame = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def _send(self, text: str) -> None:
        if not self._closed:
            await self.send(text_data=text)

    async def _error(self, code: int | None, message: str) -> None:
        await self._send(_frame("pusher:error", {"code": code, "message": message}))

    async def _subscription_error(self, channel: Any, message: str, status: int) -> None:
        name = channel if isinstance(channel, str) and len(channel) <= 200 else None
        data = {"type": "AuthError", "error": message, "status": status}
        await self._send(_frame("pusher:subscription_error", data, name))

    async def _fail(self, code: int, message: str) -> None:
        """pusher:error with the code, then close with it (pusher-js acts on the close code)."""
        if self._closed:
            return
        await self._error(code, message)
        self._closed = True
        await self.close(code=code, reason=message.encode()[:123].decode("utf-8", "ignore"))


# --- POST /broadcasting/auth -----------------------------------------------------------------


class ChannelAuthSerializer(serializers.Serializer):
    socket_id = serializers.CharField(max_length=41)
    channel_name = serializers.CharField(max_length=200)

    def validate_socket_id(self, value: str) -> str:
        if not SOCKET_ID_RE.match(value):
            raise ValidationError('Expected a Pusher socket id such as "1234.5678".')
        return value

    def validate_channel_name(self, value: str) -> str:
        if channel_group(value) is None:
            raise ValidationError(
                "Unknown channel: use private-tenant.<id>, private-user.<id> or "
                "private-system.admin."
            )
        return value


class BroadcastingAuthView(APIView):
    """Echo's channel authorizer: the signature for a channel the user may join, else 403.

    Session cookie (CSRF-protected) or `Authorization: Bearer <JWT>` (no CSRF), the project's
    API authentication; the channel rule is `may_join`, the one of `/ws/notifications/`.
    """

    @extend_schema(exclude=True)  # Pusher's endpoint, documented in docs/pusher.md, not /api/
    def post(self, request: Request) -> Response:
        form = ChannelAuthSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        socket_id = form.validated_data["socket_id"]
        channel = form.validated_data["channel_name"]
        user = request.user
        if not may_join(user, channel_group(channel)):
            raise PermissionDenied("You may not subscribe to this channel.")
        session = getattr(request._request, "session", None)
        key = session.session_key if request.auth is None and session else None
        self._announce(socket_id, user, session_group(key) if key else None)
        return Response({"auth": auth_string(socket_id, channel)})

    @staticmethod
    def _announce(socket_id: str, user: Any, session: str | None) -> None:
        """Tell the socket whose signature it holds (revocation groups, role); never fails."""
        message = {
            "type": "pusher.grant",
            "user_id": user.pk,
            "role": user.role,
            "session_group": session,
        }
        try:
            async_to_sync(get_channel_layer().group_send)(grant_group(socket_id), message)
        except Exception:
            logger.warning("could not send the grant of socket %s", socket_id, exc_info=True)


# --- POST /apps/<app_id>/events, /batch_events: the Pusher HTTP publish API -----------------

MAX_TIMESTAMP_SKEW = 600  # seconds, as Pusher's own API
MAX_DATA_BYTES = 10_240
MAX_CHANNELS = 100
MAX_BATCH = 10


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


def _target_exists(group: str) -> bool:
    from django.contrib.auth import get_user_model

    from tenants.models import Tenant

    kind, _, ident = group.partition(".")
    if kind == "tenant":
        return Tenant.objects.filter(pk=int(ident)).exists()
    if kind == "user":
        return get_user_model().objects.filter(pk=int(ident)).exists()
    return True  # system.admin


def build_published_event(item: Any) -> tuple[Any, str | None]:
    """A catalog Event for one published item, and the socket id to exclude (toOthers)."""
    from .catalog import CATALOG, LEVELS, Event, Target

    if not isinstance(item, dict):
        raise PublishRefused(400, "Each event is a JSON object.")
    name = item.get("name")
    if not isinstance(name, str) or name not in CATALOG:
        raise PublishRefused(
            400, "name must be an event of the catalog (docs/events.md).", field="name"
        )
    channels = item.get("channels", [item["channel"]] if "channel" in item else None)
    if not isinstance(channels, list) or not 0 < len(channels) <= MAX_CHANNELS:
        raise PublishRefused(400, "Give channel or channels (1 to 100).", field="channels")
    groups = []
    for channel in channels:
        group = channel_group(channel)
        if group is None or not _target_exists(group):
            raise PublishRefused(
                400,
                f"Channel {str(channel)[:80]!r} maps to no tenant, user or admin group.",
                field="channels",
            )
        groups.append(group)
    raw = item.get("data")
    if not isinstance(raw, str) or len(raw.encode()) > MAX_DATA_BYTES:
        raise PublishRefused(400, "data must be a JSON string of at most 10 KB.", field="data")
    try:
        data = json.loads(raw)
    except ValueError:
        raise PublishRefused(400, "data must hold a JSON object.", field="data") from None
    if not isinstance(data, dict):
        raise PublishRefused(400, "data must hold a JSON object.", field="data")
    socket_id = item.get("socket_id")
    if socket_id is not None and (
        not isinstance(socket_id, str) or not SOCKET_ID_RE.match(socket_id)
    ):
        raise PublishRefused(400, 'socket_id must look like "1234.5678".', field="socket_id")
    kind = CATALOG[name]
    level = data.get("level") if data.get("level") in LEVELS else kind.level
    title = data.get("title") if isinstance(data.get("title"), str) else kind.title
    message = data.get("message") if isinstance(data.get("message"), str) else kind.template
    event = Event(
        name=name,
        category=kind.category,
        level=level,
        title=title,
        message=message,
        data=data,
        targets=[Target(group) for group in dict.fromkeys(groups)],
    )
    return event, socket_id


@csrf_exempt  # authenticated by the request signature, not by a cookie
@require_POST
def publish_view(request: HttpRequest, app_id: str, batch: bool = False) -> JsonResponse:
    """Pusher's `POST /apps/<app_id>/events` and `/batch_events`: store, then publish."""
    from django.db import transaction

    from .broadcast import broadcast

    if not settings.PUSHER_APP_ID or app_id != settings.PUSHER_APP_ID:
        return JsonResponse(error_body("not_found", "Unknown app id."), status=404)
    params = {key.lower(): value for key, value in request.GET.items()}
    try:
        check_request_auth("POST", request.path, params, request.body)
        try:
            body = json.loads(request.body)
        except ValueError:
            raise PublishRefused(400, "The body is not valid JSON.") from None
        if batch:
            items = body.get("batch") if isinstance(body, dict) else None
            if not isinstance(items, list) or not 0 < len(items) <= MAX_BATCH:
                raise PublishRefused(400, "batch must list 1 to 10 events.", field="batch")
        else:
            items = [body]
        events = [build_published_event(item) for item in items]
    except PublishRefused as refused:
        fields = {refused.field: [refused.message]} if refused.field else None
        code = "invalid" if refused.status == 400 else "not_authenticated"
        return JsonResponse(error_body(code, refused.message, fields), status=refused.status)
    with transaction.atomic():
        for event, socket_id in events:
            broadcast(event, exclude=socket_id)
    return JsonResponse({"batch": [{} for _ in events]} if batch else {})
