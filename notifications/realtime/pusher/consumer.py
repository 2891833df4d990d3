"""`/app/<key>`: the Pusher protocol 7 socket (the package docstring says how it maps)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from config import request_log as log_context
from notifications.realtime.access import delivers
from notifications.realtime.gap import GapReplay
from notifications.realtime.groups import (
    is_pusher_presence,
    presence_group,
    pusher_channel_group,
    pusher_client_group,
    pusher_grant_group,
)
from notifications.realtime.layers import LayerEventDispatchMixin
from notifications.realtime.limits import ArrivalLimit
from notifications.realtime.metering import Metered
from notifications.realtime.presence import presence_grace, rejoin_wait, tracker
from notifications.realtime.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_RECONNECT,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
    TokenBucket,
    TooDeep,
    dumps,
    loads,
    new_socket_id,
)
from notifications.realtime.pusher.signing import parse_channel_data, valid_auth
from notifications.realtime.revocation import Credentials, SocketGuard

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
#: Sent on each subscribed channel when a gap is too long to replay (docs/pusher.md)
RESYNC_EVENT = "hotspot:resync"
#: logged (debug) when a socket's presence re-sync after a gap is over, the wait for missing
#: members included: what a test waits for instead of sleeping past rejoin_wait()
RESYNC_DONE = "presence re-sync after a gap: done"

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


class PusherConsumer(
    Metered, GapReplay, SocketGuard, ArrivalLimit, LayerEventDispatchMixin, AsyncWebsocketConsumer
):
    """`/app/<key>`: the Pusher protocol 7 face of the event stream (docs/pusher.md)."""

    metrics_endpoint = "pusher"

    async def connect(self) -> None:
        self._closed = False
        self.channels: dict[str, str] = {}  # subscribed Pusher channel → layer group
        self.subscribed: dict[str, tuple[str, ...]] = {}  # layer group → its subscribed channels
        self.presence: dict[str, _PresenceSubscription] = {}  # presence channel → membership
        self._presence_tasks: set[asyncio.Task] = set()  # re-syncs waiting out `rejoin_wait`
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
        log_context.socket_id.set(self.socket_id)  # on every line this socket's task logs
        self.meter.opened(None)  # "none" until a grant binds it to a person
        self.groups = [pusher_grant_group(self.socket_id)]  # discarded by Channels on disconnect
        await self.channel_layer.group_add(self.groups[0], self.channel_name)
        # A browser on the same site also sends its session cookie: use it when it is valid.
        auth = self.scope.get("socket_auth")
        if auth is not None and auth.error is None:
            await self._grant(auth.credentials())
        self._client_events = TokenBucket(CLIENT_EVENT_RATE, CLIENT_EVENT_RATE)
        await self._send(
            _frame(
                "pusher:connection_established",
                {"socket_id": self.socket_id, "activity_timeout": ACTIVITY_TIMEOUT},
            )
        )

    async def disconnect(self, code: int) -> None:
        self._closed = True
        self._guard_stop()
        self._gap_stop()
        # As a /ws/notifications/ tab: a closed page's entry lingers, so a multi-page app whose
        # next page reconnects does not blink offline for the others.
        await self._leave_all_presence(linger=presence_grace())

    # -- channel-layer messages ----------------------------------------------------------------

    async def notify_event(self, message: dict) -> None:
        """Wrap the pre-serialized frame as a Pusher event of each subscribed channel of its group.

        A tenant event goes to `private-tenant.<id>` and to `presence-tenant.<id>`, once on each
        that this socket subscribed to.
        """
        if self._closed or self._gap_seen(message.get("id")):
            return  # (or a gap replay already sent it)
        if not self.subscribed:
            return
        if not delivers(message, role=self.role, socket_id=self.socket_id):
            return
        for frame in self._pusher_frames(message["text"]):
            await self._send(frame)

    def _pusher_frames(self, text: str) -> list[str]:
        """A stored event frame as Pusher events, one per subscribed channel of its group."""
        try:
            frame = json.loads(text)
            channels = self.subscribed.get(frame["channel"])
            name = frame["event"]
        except (ValueError, KeyError, TypeError):
            logger.warning("dropping a malformed event frame")
            return []
        return [_frame(name, text, channel) for channel in channels or ()]

    # GapReplay (notifications/realtime/gap.py): after a lost Redis subscription the socket
    # replays, as Pusher events of its subscribed channels, what it missed; re-syncs presence.

    def _gap_user_id(self) -> int | None:
        return next(iter(self.grants), None)  # one person per socket (_grant)

    def _gap_channels(self) -> list[str]:
        return list(self.subscribed)

    async def _gap_send(self, text: str) -> None:
        for frame in self._pusher_frames(text):
            await self._send(frame)

    async def _gap_resync(self) -> None:
        """More was missed than a replay sends: `hotspot:resync` on each subscribed channel
        (docs/pusher.md), the Pusher face of /ws/notifications/'s `resync` (reload lists)."""
        for channel in self.channels:
            await self._send(_frame(RESYNC_EVENT, {}, channel))

    def _gap_stop(self) -> None:
        super()._gap_stop()
        for task in list(self._presence_tasks):  # a closed socket's delayed re-syncs: it is gone
            task.cancel()

    async def _gap_presence(self) -> None:
        """Tell each presence channel the members who came or went while the layer was away
        (their member_added / member_removed were lost), as the differences from what it knows.

        This process's entries are put back first (a Redis restart lost them), and a member
        missing from the store is announced gone only if still missing after `rejoin_wait()`:
        their own process may not have put theirs back yet, and a member who never left must
        not blink (member_removed, then member_added).
        """
        track = tracker(self.channel_layer)
        try:
            await track.restore()
        except Exception:  # the store still failing: what it holds is compared all the same
            logger.warning("presence restore after a gap failed", exc_info=True)
        missing = False
        for channel, sub in list(self.presence.items()):
            members = {str(m.get("id")): m for m in await track.members(sub.scope)}
            if self._closed or self.presence.get(channel) is not sub:
                continue
            for user_id, info in members.items():
                if user_id not in sub.known and user_id != sub.me:
                    await self._member_added(sub, channel, user_id, info)
            missing = missing or bool(sub.known - set(members) - {sub.me})
        if missing:
            task = asyncio.get_running_loop().create_task(self._gap_presence_gone(track))
            self._presence_tasks.add(task)
            task.add_done_callback(self._presence_tasks.discard)
        else:
            logger.debug(RESYNC_DONE)

    async def _gap_presence_gone(self, track: Any) -> None:
        """member_removed for the known members still missing from the store after a wait."""
        await asyncio.sleep(rejoin_wait())
        try:
            for channel, sub in list(self.presence.items()):
                members = {str(m.get("id")) for m in await track.members(sub.scope)}
                if self._closed or self.presence.get(channel) is not sub:
                    continue
                for user_id in sorted(sub.known - members - {sub.me}):
                    await self._member_removed(sub, channel, user_id)
        except Exception:  # presence is best effort; the next change corrects it
            logger.warning("presence re-sync after a gap failed", exc_info=True)
        logger.debug(RESYNC_DONE)

    async def _member_added(
        self, sub: _PresenceSubscription, channel: str, user_id: str, info: dict
    ) -> None:
        sub.known.add(user_id)
        payload = {"user_id": user_id, "user_info": info}
        await self._send(_frame("pusher_internal:member_added", payload, channel))

    async def _member_removed(self, sub: _PresenceSubscription, channel: str, user_id: str) -> None:
        sub.known.discard(user_id)
        await self._send(_frame("pusher_internal:member_removed", {"user_id": user_id}, channel))

    async def notify_close(self, message: dict) -> None:
        code = message.get("code")
        if code == CLOSE_TOO_SLOW:
            self.meter.overflowed()
        pusher_code = CLOSE_TO_PUSHER.get(code, ERR_UNAUTHORIZED)
        await self._fail(pusher_code, str(message.get("reason") or "Connection closed."))

    async def pusher_grant(self, message: dict) -> None:
        """`/broadcasting/auth` signed a channel for this socket on behalf of a user."""
        try:
            creds = Credentials.from_message(message)
        except (KeyError, TypeError, ValueError):
            logger.warning("dropping a malformed grant")
            return
        await self._grant(creds)

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
                if user_id not in sub.known:
                    await self._member_added(sub, channel, user_id, info)
            for person in message.get("removed", ()):
                user_id = str(person)
                if user_id != sub.me and user_id in sub.known:
                    await self._member_removed(sub, channel, user_id)

    async def pusher_client_event(self, message: dict) -> None:
        """Another socket's client event on a channel this socket subscribed to."""
        channel = message.get("channel")
        if self._closed or message.get("sender") == self.socket_id or channel not in self.channels:
            return
        body = {"event": message["event"], "channel": channel, "data": message["data"]}
        if message.get("user_id") is not None:
            body["user_id"] = message["user_id"]
        await self._send(json.dumps(body, separators=(",", ":")))

    async def _grant(self, creds: Credentials) -> None:
        """Bind the socket to the user who signed for it (the first one; one person per socket).

        A grant for another user is ignored: someone who learnt this socket's id can get their
        own signatures for it, but not attach their session (whose sign-out would close it) nor
        change the role its events are filtered by. The socket then keeps the rights of the
        latest grant only as long as /ws/notifications/ would (SocketGuard: revocation groups,
        re-check timer, token expiry).
        """
        if self._closed:
            return
        if self.grants and creds.user_id not in self.grants:
            logger.info("ignored a grant of user %s for a socket of another user", creds.user_id)
            return
        self.grants[creds.user_id] = creds.role
        self.role = creds.role
        self.meter.move(creds.role)
        await self._guard(creds)

    async def _flooded(self) -> None:
        """ArrivalLimit: more frames arrived than the bucket allows (counted on arrival)."""
        await self._fail(ERR_RATE, "Too many frames.")

    async def _revoke(self, code: int, reason: str) -> None:
        await self._fail(CLOSE_TO_PUSHER.get(code, ERR_UNAUTHORIZED), reason)

    # -- client frames -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closed:
            return
        if text_data is None or len(text_data.encode("utf-8")) > MAX_FRAME_BYTES:
            await self._error(ERR_INVALID, f"Frames are JSON text up to {MAX_FRAME_BYTES} bytes.")
            return
        try:
            frame = loads(text_data)
        except TooDeep:
            await self._error(ERR_INVALID, "The frame nests too deeply to be read.")
            return
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
                data = loads(data)
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
        await self._gap_begin()  # before the join: where a replay after a gap starts
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
        self._guard_stop()
        self._gap_stop()
        await self.close(code=code, reason=message.encode()[:123].decode("utf-8", "ignore"))
        await self._leave_all_presence()
