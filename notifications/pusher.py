"""Pusher Channels protocol 7 over the same pipeline: `/app/<key>` and `POST /broadcasting/auth`.

Existing Laravel Echo / pusher-js clients switch to this platform by changing host, port and key
(docs/pusher.md). Nothing here decides who may see what: a Pusher channel `private-<group>` is the
layer group `<group>`, and `notifications.realtime.access.may_join` is the rule, exactly as on
`/ws/notifications/`. Events are the same `notify.event` messages; the Pusher frame wraps the
pre-serialized `/ws/notifications/` frame as its `data` string.

A Pusher socket connects anonymously and proves each subscription with the HMAC signature that
`/broadcasting/auth` issued. That endpoint also sends the socket a `pusher.grant` (who signed it)
through the layer, so the socket joins its user's and session's groups (revocation closes reach
it) and knows the role (role-restricted events are dropped until the grant says otherwise).

`presence-tenant.<id>` is the same tenant group plus the presence scope `tenant.<id>` of
notifications/presence.py, shared with `/ws/notifications/` tabs: a person is one member however
many tabs or protocols they use. The member comes from the signed `channel_data`. Client events
(`client-*`, off unless PUSHER_CLIENT_EVENTS) travel in Pusher-only groups `pusher-ch.<channel>`,
so the tenant groups shared with /ws/notifications/ never carry a message type it cannot handle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
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

from .layers import LayerEventDispatchMixin
from .presence import member_info, presence_grace, tracker
from .realtime import access
from .realtime.access import delivers, may_join
from .realtime.groups import (
    is_pusher_presence,
    is_session_group,
    presence_group,
    pusher_channel_group,
    pusher_client_group,
    pusher_grant_group,
    session_group,
    user_group,
)
from .realtime.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_RECONNECT,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
    SOCKET_ID_RE,
    TokenBucket,
    dumps,
    frame_bucket,
    new_socket_id,
)
from .realtime.send import group_send

logger = logging.getLogger(__name__)

PROTOCOL_VERSIONS = frozenset({"5", "6", "7"})
ACTIVITY_TIMEOUT = 120  # seconds; the client pings after this much silence
MAX_FRAME_BYTES = 10_240  # Pusher's message size limit
CHANNELS_HINT = (
    "Unknown channel: use private-tenant.<id>, private-user.<id>, private-system.admin or "
    "presence-tenant.<id>."
)
MAX_CHANNEL_DATA_BYTES = 4096  # a presence member's signed channel_data
CLIENT_EVENT_RE = re.compile(r"^client-[A-Za-z0-9_\-=@,.;]{1,193}$")  # Pusher: names <= 200
CLIENT_EVENT_RATE = 10  # client events per second per connection (Pusher's documented limit)

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
    CLOSE_TOO_SLOW: ERR_RECONNECT,  # too slow: reconnect, missed events come back through the inbox
    CLOSE_RATE_LIMITED: ERR_OVER_CAPACITY,
}


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
        data = json.loads(raw)
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


@dataclass
class _PresenceSubscription:
    """One presence channel of a socket: its scope, its member, the members it was told of."""

    scope: str
    me: str  # Pusher user ids are strings on the wire
    known: set[str] = field(default_factory=set)


def _frame(event: str, data: Any, channel: str | None = None) -> str:
    body: dict[str, Any] = {"event": event}
    if channel is not None:
        body["channel"] = channel
    body["data"] = data if isinstance(data, str) else dumps(data)
    return dumps(body)


class PusherConsumer(LayerEventDispatchMixin, AsyncWebsocketConsumer):
    """`/app/<key>`: the Pusher protocol 7 face of the event stream (docs/pusher.md)."""

    async def connect(self) -> None:
        self._closed = False
        self.channels: dict[str, str] = {}  # subscribed Pusher channel → layer group
        self.subscribed: dict[str, tuple[str, ...]] = {}  # layer group → its subscribed channels
        self.presence: dict[str, _PresenceSubscription] = {}  # presence channel → membership
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
        self.groups = [pusher_grant_group(self.socket_id)]  # discarded by Channels on disconnect
        await self.channel_layer.group_add(self.groups[0], self.channel_name)
        # A browser on the same site also sends its session cookie: use it when it is valid.
        auth = self.scope.get("socket_auth")
        if auth is not None and auth.error is None:
            internal = session_group(auth.session_key) if auth.session_key else None
            await self._grant(auth.user.pk, auth.user.role, internal)
        self._frames = frame_bucket()
        self._client_events = TokenBucket(CLIENT_EVENT_RATE, CLIENT_EVENT_RATE)
        await self._send(
            _frame(
                "pusher:connection_established",
                {"socket_id": self.socket_id, "activity_timeout": ACTIVITY_TIMEOUT},
            )
        )

    async def disconnect(self, code: int) -> None:
        self._closed = True
        # As a /ws/notifications/ tab: a closed page's entry lingers, so a multi-page app whose
        # next page reconnects does not blink offline for the others.
        await self._leave_all_presence(linger=presence_grace())

    # -- channel-layer messages ----------------------------------------------------------------

    async def notify_event(self, message: dict) -> None:
        """Wrap the pre-serialized frame as a Pusher event of each subscribed channel of its group.

        A tenant event goes to `private-tenant.<id>` and to `presence-tenant.<id>`, once on each
        that this socket subscribed to.
        """
        if self._closed or not self.subscribed:
            return
        if not delivers(message, role=self.role, socket_id=self.socket_id):
            return
        text = message["text"]
        try:
            frame = json.loads(text)
            channels = self.subscribed.get(frame["channel"])
            name = frame["event"]
        except (ValueError, KeyError, TypeError):
            logger.warning("dropping a malformed event frame")
            return
        for channel in channels or ():
            await self._send(_frame(name, text, channel))

    async def notify_close(self, message: dict) -> None:
        code = message.get("code")
        pusher_code = CLOSE_TO_PUSHER.get(code, ERR_UNAUTHORIZED)
        await self._fail(pusher_code, str(message.get("reason") or "Connection closed."))

    async def pusher_grant(self, message: dict) -> None:
        """`/broadcasting/auth` signed a channel for this socket on behalf of a user."""
        await self._grant(message["user_id"], message.get("role"), message.get("session_group"))

    async def presence_changed(self, message: dict) -> None:
        """Members came or went in a tenant scope (any protocol): member_added / member_removed.

        Each channel remembers the members it told its client of, so a member is added once
        (never this socket's own person: pusher-js adds itself from subscription_succeeded) and
        removed only if it was added; this also absorbs changes that raced the subscription.
        """
        if self._closed:
            return
        scope = message.get("scope")
        for channel, sub in list(self.presence.items()):
            if sub.scope != scope:
                continue
            for info in message.get("added", ()):
                user_id = str(info.get("id"))
                if user_id in sub.known:
                    continue
                sub.known.add(user_id)
                await self._send(
                    _frame(
                        "pusher_internal:member_added",
                        {"user_id": user_id, "user_info": info},
                        channel,
                    )
                )
            for person in message.get("removed", ()):
                user_id = str(person)
                if user_id == sub.me or user_id not in sub.known:
                    continue
                sub.known.discard(user_id)
                await self._send(
                    _frame("pusher_internal:member_removed", {"user_id": user_id}, channel)
                )

    async def pusher_client_event(self, message: dict) -> None:
        """Another socket's client event on a channel this socket subscribed to."""
        channel = message.get("channel")
        if self._closed or message.get("sender") == self.socket_id or channel not in self.channels:
            return
        body = {"event": message["event"], "channel": channel, "data": message["data"]}
        if message.get("user_id") is not None:
            body["user_id"] = message["user_id"]
        await self._send(json.dumps(body, separators=(",", ":")))

    async def _grant(self, user_id: int, role: str | None, session: str | None) -> None:
        """Bind the socket to the user who signed for it (the first one; one person per socket).

        A grant for another user is ignored: someone who learnt this socket's id can get their
        own signatures for it, but not attach their session (whose sign-out would close it) nor
        change the role its events are filtered by.
        """
        if self.grants and user_id not in self.grants:
            logger.info("ignored a grant of user %s for a socket of another user", user_id)
            return
        if user_id not in self.grants:
            self.grants[user_id] = role
            await self._group_add(user_group(user_id))
        else:
            self.grants[user_id] = role
        if is_session_group(session):
            await self._group_add(session)
        self.role = role

    # -- client frames -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closed:
            return
        if not self._frames.take():
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
            await self._client_event(event, frame)
        else:
            await self._error(ERR_INVALID, f"Unknown event {event[:60]}.")

    async def _subscribe(self, data: dict) -> None:
        channel = data.get("channel")
        group = pusher_channel_group(channel)
        if group is None:
            await self._subscription_error(channel, CHANNELS_HINT, 404)
            return
        member = None
        channel_data = None
        if is_pusher_presence(channel):
            channel_data = data.get("channel_data")
            if not isinstance(channel_data, str):
                await self._subscription_error(
                    channel, "A presence channel needs the channel_data of its signature.", 401
                )
                return
        if not valid_auth(self.socket_id, channel, data.get("auth"), channel_data):
            await self._subscription_error(channel, "Invalid signature for this socket.", 401)
            return
        if channel_data is not None:
            member = None
            if len(channel_data.encode("utf-8")) <= MAX_CHANNEL_DATA_BYTES:
                member = parse_channel_data(channel_data)
            if member is None:
                await self._subscription_error(
                    channel,
                    "channel_data must be a JSON object with the platform user id as user_id "
                    f"and an object user_info, up to {MAX_CHANNEL_DATA_BYTES} bytes.",
                    400,
                )
                return
        if channel in self.presence:  # subscribing again (another member?): leave first
            await self._leave_presence(channel)
        await self._group_add(group)
        if settings.PUSHER_CLIENT_EVENTS:
            await self._group_add(pusher_client_group(channel))
        self.channels[channel] = group
        self._index()
        reply: dict[str, Any] = {}
        if member is not None:
            reply = await self._join_presence(channel, group, *member)
        await self._send(_frame("pusher_internal:subscription_succeeded", reply, channel))

    async def _unsubscribe(self, data: dict) -> None:
        channel = data.get("channel")
        if pusher_channel_group(channel) is None or channel not in self.channels:
            return
        # The tenant/user group membership stays (closes for that group still apply); events
        # of the channel stop, and the socket leaves the channel's presence and client events.
        del self.channels[channel]
        self._index()
        await self._group_discard(pusher_client_group(channel))
        await self._leave_presence(channel)

    def _index(self) -> None:
        by_group: dict[str, list[str]] = {}
        for channel, group in self.channels.items():
            by_group.setdefault(group, []).append(channel)
        self.subscribed = {group: tuple(channels) for group, channels in by_group.items()}

    # -- presence channels ---------------------------------------------------------------------

    async def _join_presence(
        self, channel: str, scope: str, user_id: int, info: dict[str, Any]
    ) -> dict[str, Any]:
        """Join the shared scope with this socket; the `presence` data of subscription_succeeded."""
        me = str(user_id)
        sub = _PresenceSubscription(scope=scope, me=me)
        self.presence[channel] = sub
        await self._group_add(presence_group(scope))
        members: list[dict[str, Any]] = []
        try:
            track = tracker(self.channel_layer)
            await track.join(scope, self.channel_name, info)
            members = await track.members(scope)
        except Exception:  # presence is best effort, as on /ws/notifications/
            logger.warning("presence join failed", exc_info=True)
        members_by_id = {str(m.get("id")): m for m in members}
        members_by_id.setdefault(me, info)
        sub.known = set(members_by_id)
        return {
            "presence": {
                "ids": list(members_by_id),
                "hash": members_by_id,
                "count": len(members_by_id),
            }
        }

    async def _leave_presence(self, channel: str, linger: float = 0.0) -> None:
        sub = self.presence.pop(channel, None)
        if sub is None:
            return
        if not any(other.scope == sub.scope for other in self.presence.values()):
            await self._group_discard(presence_group(sub.scope))
        try:
            await tracker(self.channel_layer).leave(sub.scope, self.channel_name, linger=linger)
        except Exception:
            logger.warning("presence leave failed", exc_info=True)

    async def _leave_all_presence(self, linger: float = 0.0) -> None:
        for channel in list(getattr(self, "presence", {})):
            await self._leave_presence(channel, linger)

    # -- client events -------------------------------------------------------------------------

    async def _client_event(self, event: str, frame: dict) -> None:
        """`client-*` from this socket to the others subscribed to the channel (not stored)."""
        if not settings.PUSHER_CLIENT_EVENTS:
            await self._error(ERR_INVALID, "Client events are not enabled.")
            return
        if not CLIENT_EVENT_RE.match(event):
            await self._error(
                ERR_INVALID,
                "Client event names are client- followed by 1 to 193 letters, digits or _-=@,.;",
            )
            return
        channel = frame.get("channel")
        if pusher_channel_group(channel) is None:
            await self._error(
                ERR_INVALID, "Client events are only allowed on private- and presence- channels."
            )
            return
        if channel not in self.channels:
            await self._error(
                ERR_INVALID, f"Subscribe to {channel} before sending client events on it."
            )
            return
        if not self._client_events.take():
            await self._error(
                ERR_RATE, f"Client event rejected: more than {CLIENT_EVENT_RATE} per second."
            )
            return
        raw = frame.get("data")
        data = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"))
        message: dict[str, Any] = {
            "type": "pusher.client_event",
            "channel": channel,
            "event": event,
            "data": data,
            "sender": self.socket_id,
        }
        sub = self.presence.get(channel)
        if sub is not None:
            message["user_id"] = sub.me
        try:
            await self.channel_layer.group_send(pusher_client_group(channel), message)
        except Exception:  # the layer is down: ephemeral, nothing to retry
            logger.warning("could not send a client event", exc_info=True)
            await self._error(ERR_RECONNECT, "The client event could not be delivered.")

    # -- helpers -------------------------------------------------------------------------------

    async def _group_add(self, group: str) -> None:
        if group not in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)

    async def _group_discard(self, group: str) -> None:
        if group in self.groups:
            self.groups.remove(group)
            await self.channel_layer.group_discard(group, self.channel_name)

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
        """pusher:error with the code, then close with it (pusher-js acts on the close code).

        The socket leaves its presence channels now, without the grace of a closed page (a
        revoked member disappears at once), not when the client gets round to closing.
        """
        if self._closed:
            return
        await self._error(code, message)
        self._closed = True
        await self.close(code=code, reason=message.encode()[:123].decode("utf-8", "ignore"))
        await self._leave_all_presence()


# --- POST /broadcasting/auth -----------------------------------------------------------------


class ChannelAuthSerializer(serializers.Serializer):
    socket_id = serializers.CharField(max_length=41)
    channel_name = serializers.CharField(max_length=200)

    def validate_socket_id(self, value: str) -> str:
        if not SOCKET_ID_RE.match(value):
            raise ValidationError('Expected a Pusher socket id such as "1234.5678".')
        return value

    def validate_channel_name(self, value: str) -> str:
        if pusher_channel_group(value) is None:
            raise ValidationError(CHANNELS_HINT)
        return value


class BroadcastingAuthView(APIView):
    """Echo's channel authorizer: the signature for a channel the user may join, else 403.

    For `presence-tenant.<id>` also the member's `channel_data`, covered by the signature.

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
        if not may_join(user, pusher_channel_group(channel)):
            raise PermissionDenied("You may not subscribe to this channel.")
        session = getattr(request._request, "session", None)
        key = session.session_key if request.auth is None and session else None
        self._announce(socket_id, user, session_group(key) if key else None)
        # Laravel's answer for presence: the member's data, signed with the channel
        if is_pusher_presence(channel):
            channel_data = presence_channel_data(user)
            return Response(
                {
                    "auth": auth_string(socket_id, channel, channel_data),
                    "channel_data": channel_data,
                }
            )
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
        group_send(pusher_grant_group(socket_id), message)


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
        group = pusher_channel_group(channel)
        if group is None or not access.policy.group_exists(group):
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
