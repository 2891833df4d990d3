"""`/ws/notifications/`: one authenticated socket per browser tab (wire protocol: docs/protocol.md).

Thin on purpose: authenticate (scope from notifications.realtime.auth), join the groups
`allowed_groups` permits, and forward each event's pre-serialized `text` as is. The per-event
path touches no ORM and parses no JSON; the database is read only at the handshake and by a
slow re-check timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from config import request_log as log_context
from config.wsframes import SEND_FRAME, encoded_frames, send_frames_message
from notifications.conf import notification_settings as conf
from notifications.realtime import access, groups
from notifications.realtime.access import allowed_groups, delivers, may_join
from notifications.realtime.auth import SocketAuth
from notifications.realtime.gap import GapReplay
from notifications.realtime.groups import (
    PRESENCE_SYSTEM_GROUP,
    SYSTEM_ADMIN_GROUP,
    presence_group,
    record_name,
    session_group,
    tenant_group,
    tenant_scope,
)
from notifications.realtime.layers import LayerEventDispatchMixin
from notifications.realtime.limits import ArrivalLimit, ReplayBudget
from notifications.realtime.metering import Metered
from notifications.realtime.presence import member_info, presence_grace, rejoin_wait, tracker
from notifications.realtime.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHENTICATED,
    MAX_CHANNEL_LENGTH,
    MAX_CLOSE_REASON_BYTES,
    SOCKET_ID_RE,
    TooDeep,
    dumps,
    loads,
    new_socket_id,
)
from notifications.realtime.revocation import SocketGuard
from notifications.replay import Replay, missed_events

logger = logging.getLogger(__name__)


class NotificationConsumer(
    Metered, GapReplay, SocketGuard, LayerEventDispatchMixin, ArrivalLimit, AsyncWebsocketConsumer
):
    """Authenticated event stream; see docs/protocol.md for every frame and close code."""

    metrics_endpoint = "notifications"

    # Rarely changed state: class-level defaults, set on the instance only when it changes. A
    # consumer with 30 or more instance attributes loses CPython's shared-key dict (280 ->
    # 1,584 bytes per socket; issue 16's memory goal). (GapReplay declares its own so.)
    _replay_budget: ReplayBudget | None = None  # made on the first resume
    _resume_next: tuple[int, str | None] | None = None  # coalesced: the latest only
    _resume_last: tuple[int, str | None] | None = None
    _resume_task: asyncio.Task | None = None
    watching_system = False  # a system admin watching the tenants' online counts
    record: str | None = None  # the record this page edits (presence "view")
    send_frames = False  # the server writes pre-encoded frames (config.wsframes)
    _write_frames: Any = None  # ...and can write them synchronously (direct delivery)
    _writable: Any = None  # ...and says when its transport takes writes (an asyncio.Event)

    async def connect(self) -> None:
        self._closed = False
        self._timers: list[asyncio.Task] = []
        self.muted: set[str] = set()
        auth: SocketAuth = self.scope.get("socket_auth") or SocketAuth(
            user=None, error="unauthenticated", detail="Not signed in."
        )
        # Accept, then close: a rejected handshake would hide the code from browsers.
        await self.accept()
        offered = (self.scope.get("extensions") or {}).get(SEND_FRAME)
        if offered is not None:
            self.send_frames = True
            self._write_frames = offered.get("write")
            self._writable = offered.get("writable")
        if auth.error is not None:
            await self._close(auth.close_code or CLOSE_UNAUTHENTICATED, auth.detail)
            return
        self.auth = auth
        user = auth.user
        self.role: str = user.role
        self.meter.opened(self.role)
        self.socket_id = new_socket_id()
        log_context.socket_id.set(self.socket_id)  # on every line this socket's task logs
        log_context.tenant_id.set(user.tenant_id)
        logger.debug("socket opened for user %s (%s)", user.pk, self.role)
        self.channels = allowed_groups(user)
        internal = [session_group(auth.session_key)] if auth.session_key else []
        for group in self.channels + internal:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups = self.channels + internal  # discarded by Channels on disconnect
        await self._gap_begin()  # where a replay after a lost subscription starts (gap.py)
        await self._send_frame(
            {
                "type": "welcome",
                "socket_id": self.socket_id,
                "user": {
                    "id": user.pk,
                    "username": user.username,
                    "role": user.role,
                    "tenant": user.tenant_id,
                },
                "channels": self.channels,
            }
        )
        await self._guard(auth.credentials())  # revocation, re-check, token expiry
        # Every open page of a tenant user is "online" in that tenant (one member per person).
        self.entries: set[str] = set()  # scopes where this socket counts as present
        self.watching: dict[str, str] = {}  # scope → channel, whose changes this socket gets
        if user.tenant_id is not None and tenant_group(user.tenant_id) in self.channels:
            await self._presence_join(tenant_scope(user.tenant_id))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Run the consumer; however it ends, leave presence and stop the timers.

        A handler that raises (e.g. a send on a socket the peer has just closed: daphne raises
        then) ends the consumer without `disconnect`; its presence entries would otherwise stay
        in this process's tracker and be refreshed by the heartbeat forever (a ghost online).
        """
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._cleanup()

    async def disconnect(self, code: int) -> None:
        await self._cleanup()

    async def _cleanup(self) -> None:
        """Idempotent: on disconnect, and again when the consumer ends for any reason."""
        self._closed = True
        for task in getattr(self, "_timers", []):
            task.cancel()
        self._guard_stop()
        self._gap_stop()
        await self._presence_leave_all()

    # -- channel-layer messages (the hot path) -------------------------------------------------

    def _event_text(self, message: dict) -> str | None:
        """The frame an event sends this socket, or None when its audience excludes it.

        Run again for the same event when a direct write declines (`write_events`): each
        filter gives the same answer twice (`_gap_seen` notes the same id again).
        """
        if self._closed:
            return None
        if self._gap_seen(message.get("id")):
            return None  # a gap replay already sent it
        if not delivers(message, role=self.role, socket_id=self.socket_id):
            return None
        if self.muted and self._channel_of(message) in self.muted:
            return None
        return message["text"]

    async def notify_event(self, message: dict) -> None:
        """Forward an event's pre-serialized frame unless its audience excludes this socket."""
        await self.notify_events([message])

    async def notify_events(self, messages: list[dict]) -> None:
        """Events queued for this socket, in order; where the server takes finished frames, the
        ones encoded for every socket of this process, all in one write.

        What `self.send(text_data=...)` does (Metered → AsyncWebsocketConsumer → AsyncConsumer
        → the server), without three coroutine layers per delivery.
        """
        writable = self._writable
        if writable is not None and not writable.is_set():
            # A slow reader's transport is paused: wait before filtering, so a revocation or
            # close that happens meanwhile stops these events (the send would write them as
            # they were filtered).
            await writable.wait()
        texts = [text for m in messages if (text := self._event_text(m)) is not None]
        if not texts:
            return
        if self.send_frames:
            await self.base_send(send_frames_message(texts))
            self.meter.frames.n += len(texts)
            return
        for text in texts:
            if self._closed:
                return  # closed while an earlier one was sent
            await self.base_send({"type": "websocket.send", "text": text})
            self.meter.frames.n += 1

    def write_events(self, messages: list[dict]) -> bool:
        """Direct delivery to an idle socket (LayerEventDispatchMixin): the same filters, the
        frames written now in one write; False when the server cannot take them as they are."""
        write = self._write_frames
        if write is None or self._closed:
            return False
        texts = [text for m in messages if (text := self._event_text(m)) is not None]
        if texts and not write(encoded_frames(texts)):
            return False
        self.meter.frames.n += len(texts)
        return True

    # GapReplay (gap.py): what a replay after a lost Redis subscription covers and sends.

    def _gap_user_id(self) -> int | None:
        return self.auth.user.pk

    def _gap_channels(self) -> list[str]:
        return [c for c in self.channels if c not in self.muted]

    async def _gap_send(self, text: str) -> None:
        await self.send(text_data=text)

    async def _gap_resync(self) -> None:
        await self._send_frame({"type": "resync"})

    async def _gap_presence(self) -> None:
        """The lists this socket watches, again: changes announced during the gap were lost.

        This process's entries are put back at once (a Redis restart lost them); the lists are
        sent after `rejoin_wait()`, once the other processes have put theirs back too, so a
        member who never left does not vanish from them for a moment.
        """
        try:
            await tracker(self.channel_layer).restore()
        except Exception:  # the store still failing: the lists are re-sent all the same
            logger.warning("presence restore after a gap failed", exc_info=True)
        task = asyncio.get_running_loop().create_task(self._gap_presence_lists())
        self._timers = [t for t in self._timers if not t.done()] + [task]

    async def _gap_presence_lists(self) -> None:
        await asyncio.sleep(rejoin_wait())
        if self._closed:
            return
        try:
            watched = list(self.watching.values()) + [SYSTEM_ADMIN_GROUP] * self.watching_system
            for channel in watched:
                await self._watch_presence({"channel": channel})
            await self._send_viewers()
        except Exception:  # presence is best effort; the next change corrects it
            logger.warning("presence re-sync after a gap failed", exc_info=True)

    async def notify_close(self, message: dict) -> None:
        code = message.get("code")
        if not isinstance(code, int) or not 4000 <= code <= 4999:
            code = CLOSE_FORBIDDEN
        if code == CLOSE_TOO_SLOW:
            self.meter.overflowed()
        await self._close(code, str(message.get("reason") or ""))

    @staticmethod
    def _channel_of(message: dict) -> str | None:
        """The event's group; only paid by sockets that unsubscribed from something."""
        channel = message.get("channel")
        if channel is None:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                channel = json.loads(message["text"]).get("channel")
        return channel

    # -- client frames ---------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closed:
            return
        if text_data is None:
            await self._error("binary_not_supported", "Only text frames (JSON) are accepted.")
            return
        limit = conf.WS_MAX_FRAME_BYTES
        if len(text_data) > limit // 4 and len(text_data.encode("utf-8")) > limit:
            await self._error("frame_too_large", f"Frames are limited to {limit} bytes.")
            return
        try:
            frame = loads(text_data)
        except TooDeep:
            await self._error("invalid_json", "The frame nests too deeply to be read.")
            return
        except ValueError:
            await self._error("invalid_json", "The frame is not valid JSON.")
            return
        if not isinstance(frame, dict):
            await self._error("invalid_frame", "A frame must be a JSON object.")
            return
        if "action" not in frame:
            await self._error("missing_field", "The frame has no action.", field="action")
            return
        action = frame["action"]
        if action == "ping":
            await self._send_frame({"type": "pong"})
        elif action in ("subscribe", "unsubscribe"):
            await self._subscription(action, frame)
        elif action == "resume":
            await self._resume(frame)
        elif action == "presence":
            await self._watch_presence(frame)
        elif action == "view":
            await self._view(frame)
        else:
            await self._error(
                "unknown_action",
                "Known actions: subscribe, unsubscribe, ping, resume, presence, view.",
                field="action",
            )

    @property
    def _replay(self) -> ReplayBudget:
        """This socket's replay budget (most sockets never resume: not made for them)."""
        if self._replay_budget is None:
            self._replay_budget = ReplayBudget(self.auth.user.pk)
        return self._replay_budget

    async def _flooded(self) -> None:
        """ArrivalLimit: more frames arrived than the bucket allows (counted on arrival)."""
        await self._close(CLOSE_RATE_LIMITED, "Too many frames.")

    async def _resume(self, frame: dict) -> None:
        """Validate a resume, then run it in the background, coalesced with the ones after it.

        While one replay runs, further resumes only replace the one waiting (the latest wins),
        and one identical to the resume just answered gets `resumed` alone: sending `resume`
        19 times a second costs at most one replay at a time. Replays are budgeted
        (limits.ReplayBudget).
        """
        if "last_id" not in frame:
            await self._error("missing_field", "The frame has no last_id.", field="last_id")
            return
        last_id = frame["last_id"]
        if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 <= last_id < 2**63:
            await self._error(
                "invalid_field", "last_id must be a non-negative integer.", field="last_id"
            )
            return
        previous = frame.get("previous_socket_id")
        if previous is not None and (
            not isinstance(previous, str) or SOCKET_ID_RE.match(previous) is None
        ):
            await self._error(
                "invalid_field",
                'previous_socket_id must be a socket id like "123.456".',
                field="previous_socket_id",
            )
            return
        self._resume_next = (last_id, previous)
        if self._resume_task is None or self._resume_task.done():
            self._resume_task = asyncio.create_task(self._resume_loop())
            self._timers = [t for t in self._timers if not t.done()] + [self._resume_task]

    async def _resume_loop(self) -> None:
        while self._resume_next is not None and not self._closed:
            wanted, self._resume_next = self._resume_next, None
            if wanted == self._resume_last:  # the same question, just answered: coalesced
                self.meter.resumed("coalesced")
                await self._send_frame({"type": "resumed"})  # its events came live since
                continue
            wait = await self._replay.retry_after()
            if wait > 0:
                self.meter.resumed("limited")
                await self._error(
                    "replay_limited",
                    "Too many events replayed; resume again later.",
                    retry_after=round(wait, 1),
                )
                continue
            self._resume_last = wanted
            await self._replay_since(*wanted)

    async def _replay_since(self, last_id: int, previous: str | None) -> None:
        """Send the events missed since `last_id` (oldest first), then `resumed` (or `resync`).

        Live events keep flowing meanwhile; one that arrives both ways is deduped by id in the
        client. The ORM is read here, once per resume, never on the per-event path.
        """
        channels = [c for c in self.channels if c not in self.muted]
        try:
            result = await database_sync_to_async(missed_events)(
                user_id=self.auth.user.pk,
                last_id=last_id,
                channels=channels,
                exclude=previous,
            )
        except Exception:  # a database hiccup: the client reloads its lists instead
            logger.warning("replay failed", exc_info=True)
            result = Replay(resync=True)
        await self._replay.charge(len(result.frames))
        if result.resync:
            self.meter.resumed("resync")
            await self._send_frame({"type": "resync"})
            return
        self.meter.resumed("replayed", len(result.frames))
        for text in result.frames:
            if self._closed:
                return
            await self.send(text_data=text)
        await self._send_frame({"type": "resumed"})

    async def _subscription(self, action: str, frame: dict) -> None:
        if "channel" not in frame:
            await self._error("missing_field", "The frame has no channel.", field="channel")
            return
        channel = frame["channel"]
        if not isinstance(channel, str) or not 0 < len(channel) <= MAX_CHANNEL_LENGTH:
            await self._error("invalid_field", "channel must be a short string.", field="channel")
            return
        if not may_join(self.auth.user, channel):
            await self._send_frame(
                {
                    "type": "error",
                    "code": "forbidden",
                    "message": "You may not subscribe to this channel.",
                    "channel": channel,
                }
            )
            return
        # Membership of the layer group stays (closes for the account still arrive there);
        # unsubscribing only stops this socket's events of that channel.
        if action == "subscribe":
            self.muted.discard(channel)
            await self._send_frame({"type": "subscribed", "channel": channel})
        else:
            self.muted.add(channel)
            await self._send_frame({"type": "unsubscribed", "channel": channel})

    # -- presence (notifications/realtime/presence/) -----------------------------------------

    async def presence_changed(self, message: dict) -> None:
        """A person came online or went away in a scope this socket watches."""
        scope = message.get("scope")
        if self._closed:
            return
        if scope is not None and scope == self.record:
            await self._send_viewers()
            return
        channel = self.watching.get(scope)
        if channel is None:
            return
        for member in message.get("added", ()):
            await self._send_frame(
                {
                    "type": "member_added",
                    "channel": channel,
                    "member": member,
                    "online": message.get("online"),
                }
            )
        for person in message.get("removed", ()):
            await self._send_frame(
                {
                    "type": "member_removed",
                    "channel": channel,
                    "member": {"id": person},
                    "online": message.get("online"),
                }
            )

    async def presence_count(self, message: dict) -> None:
        """A tenant's online count changed (system admins watching the counts)."""
        if not self._closed and self.watching_system:
            await self._send_frame(
                {
                    "type": "presence_count",
                    "tenant": message.get("tenant"),
                    "online": message.get("online"),
                }
            )

    async def _presence_join(self, scope: str) -> None:
        self.entries.add(scope)
        try:
            await tracker(self.channel_layer).join(
                scope, self.channel_name, member_info(self.auth.user)
            )
        except Exception:  # presence is best effort: never refuse a socket for it
            logger.warning("presence join failed", exc_info=True)

    async def _presence_leave_all(self) -> None:
        """The socket closed: its entries linger a moment (the next page's socket takes over)."""
        if not hasattr(self, "entries"):
            return
        track = tracker(self.channel_layer)
        for scope in list(self.entries):
            try:
                await track.leave(scope, self.channel_name, linger=presence_grace())
            except Exception:
                logger.warning("presence leave failed", exc_info=True)
        self.entries.clear()
        if self.watching_system:
            self.watching_system = False
            track.watch_system(-1)

    async def _watch_presence(self, frame: dict) -> None:
        """`{"action":"presence","channel":"tenant.3"}`: who is online; then live changes.

        A tenant's members may watch its channel; system admins watch `system.admin`, which
        gives online counts per tenant instead of names.
        """
        channel = frame.get("channel")
        if channel is None:
            await self._error("missing_field", "The frame has no channel.", field="channel")
            return
        if not isinstance(channel, str) or not may_join(self.auth.user, channel):
            await self._send_frame(
                {
                    "type": "error",
                    "code": "forbidden",
                    "message": "You may not see presence of this channel.",
                    "channel": channel if isinstance(channel, str) else None,
                }
            )
            return
        track = tracker(self.channel_layer)
        if channel == SYSTEM_ADMIN_GROUP:
            if not self.watching_system:
                self.watching_system = True
                track.watch_system(1)
                await self.channel_layer.group_add(PRESENCE_SYSTEM_GROUP, self.channel_name)
                self.groups.append(PRESENCE_SYSTEM_GROUP)
            tenant_ids = await database_sync_to_async(access.policy.tenant_ids)()
            counts = await track.counts([tenant_scope(pk) for pk in tenant_ids])
            await self._send_frame(
                {
                    "type": "presence_counts",
                    "channel": channel,
                    "counts": {str(pk): counts[tenant_scope(pk)] for pk in tenant_ids},
                }
            )
            return
        if groups.tenant_of(channel) is None:
            await self._error(
                "invalid_field",
                "Presence exists for tenant.<id> and system.admin.",
                field="channel",
            )
            return
        scope = channel
        self.watching[scope] = channel
        group = presence_group(scope)
        if group not in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        members = await track.members(scope)
        await self._send_frame(
            {"type": "presence", "channel": channel, "members": members, "online": len(members)}
        )

    async def _view(self, frame: dict) -> None:
        """`{"action":"view","record":"user.42"}`: this page edits that record; who else does."""
        if "record" not in frame:
            await self._error("missing_field", "The frame has no record.", field="record")
            return
        record = frame["record"]
        track = tracker(self.channel_layer)
        if self.record is not None:  # one record per page: leave the previous one
            old, self.record = self.record, None
            self.entries.discard(old)
            with contextlib.suppress(Exception):
                await track.leave(old, self.channel_name)
        if record is None:
            return
        if not isinstance(record, str) or len(record) > MAX_CHANNEL_LENGTH:
            await self._error("invalid_field", 'record must look like "user.42".', field="record")
            return
        scope = await database_sync_to_async(access.policy.record_scope)(self.auth.user, record)
        if scope is None:
            await self._send_frame(
                {
                    "type": "error",
                    "code": "forbidden",
                    "message": "You may not edit this record.",
                    "record": record,
                }
            )
            return
        self.record = scope
        group = presence_group(scope)
        if group not in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups.append(group)
        await self._presence_join(scope)
        await self._send_viewers()

    async def _send_viewers(self) -> None:
        """The other people with this socket's record open (the page shows a notice)."""
        scope = self.record
        if scope is None:
            return
        members = await tracker(self.channel_layer).members(scope)
        me = self.auth.user.pk
        await self._send_frame(
            {
                "type": "viewers",
                "record": record_name(scope),
                "viewers": [m for m in members if m.get("id") != me],
            }
        )

    # -- timers ----------------------------------------------------------------------------

    async def _revoke(self, code: int, reason: str) -> None:
        await self._close(code, reason)

    # -- helpers ---------------------------------------------------------------------------

    async def _send_frame(self, frame: dict) -> None:
        if self._closed:
            return
        try:
            await self.send(text_data=dumps(frame))
        except Exception:  # the peer has just gone (e.g. presence news of others' actions)
            logger.debug("frame to a closed socket dropped", exc_info=True)

    async def _error(self, code: str, message: str, **extra: Any) -> None:
        await self._send_frame({"type": "error", "code": code, "message": message, **extra})

    async def _close(self, code: int, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._timers:
            if task is not asyncio.current_task():
                task.cancel()
        self._guard_stop()
        await self.close(
            code=code,
            reason=reason.encode("utf-8")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore"),
        )
