"""`POST /broadcasting/auth` (Echo's channel authorizer) and Pusher's HTTP publish API."""

from __future__ import annotations

import logging
from typing import Any

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
from notifications.realtime import access
from notifications.realtime.access import may_join
from notifications.realtime.groups import (
    is_pusher_presence,
    pusher_channel_group,
    pusher_grant_group,
    tenant_of,
    user_of,
)
from notifications.realtime.protocol import (
    SOCKET_ID_RE,
    loads,
)
from notifications.realtime.pusher.consumer import CHANNELS_HINT
from notifications.realtime.pusher.signing import (
    PublishRefused,
    auth_string,
    check_request_auth,
    presence_channel_data,
)
from notifications.realtime.revocation import Credentials, token_claims
from notifications.realtime.send import group_send

logger = logging.getLogger(__name__)

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
        self._announce(socket_id, grant_credentials(request))
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
    def _announce(socket_id: str, creds: Credentials) -> None:
        """Tell the socket whose signature it holds (its guard's credentials); never fails."""
        group_send(pusher_grant_group(socket_id), {"type": "pusher.grant", **creds.as_message()})


def grant_credentials(request: Request) -> Credentials:
    """Who signed a channel, and with what: the session, or the JWT (its claims and expiry).

    The socket re-checks exactly these (notifications.realtime.revocation.SocketGuard), so a
    Pusher socket loses its rights when the session or token that signed for it would.
    """
    user = request.user
    token = request.auth
    if token is not None and hasattr(token, "payload"):
        return Credentials(
            user_id=user.pk,
            role=user.role,
            tenant_id=user.tenant_id,
            token_claims=token_claims(token),
            expires_at=float(token["exp"]),
        )
    session = getattr(request._request, "session", None)
    return Credentials(
        user_id=user.pk,
        role=user.role,
        tenant_id=user.tenant_id,
        session_key=session.session_key if session is not None else None,
    )


# --- POST /apps/<app_id>/events, /batch_events: the Pusher HTTP publish API -----------------

MAX_DATA_BYTES = 10_240
MAX_CHANNELS = 100
MAX_BATCH = 10


def build_published_event(item: Any) -> tuple[Any, str | None]:
    """A catalog Event for one published item, and the socket id to exclude (toOthers).

    The catalog builds it (`EventType.build`): `data` must hold exactly the type's payload
    fields, the message comes from its template, and its audience (groups and roles) from the
    catalog; the channels only choose among that audience (a channel outside it is refused).
    System events (SystemNotification, SystemAlert) are free text: `title`, `message` and
    `level` may be given, and `tenant_id` / `user_id` default to the channels addressed.
    Anything else is a PublishRefused(400) naming the field.
    """
    from notifications.events.catalog import CATALOG

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
    groups: dict[str, str] = {}  # group → the channel that named it
    for channel in channels:
        group = pusher_channel_group(channel)
        if group is None or not access.policy.group_exists(group):
            raise PublishRefused(
                400,
                f"Channel {str(channel)[:80]!r} maps to no tenant, user or admin group.",
                field="channels",
            )
        groups.setdefault(group, channel)
    raw = item.get("data")
    if not isinstance(raw, str) or len(raw.encode()) > MAX_DATA_BYTES:
        raise PublishRefused(400, "data must be a JSON string of at most 10 KB.", field="data")
    try:
        data = loads(raw)
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
    event = _catalog_build(kind, data, list(groups))
    audience = {target.group: target for target in event.targets}
    for group, channel in groups.items():
        if group not in audience:
            raise PublishRefused(
                400,
                f"{name} with this data does not go to {channel}: its audience is "
                f"{kind.audience_text()} (docs/events.md).",
                field="channels",
            )
    event.targets = [audience[group] for group in groups]
    return event, socket_id


def _catalog_build(kind: Any, data: dict[str, Any], groups: list[str]) -> Any:
    """`kind.build(data)`, its refusals as 400s naming the wrong field."""
    options: dict[str, Any] = {}
    if kind.category == "system":  # free text from the platform team (fire_event's options)
        for key in ("title", "message", "level"):
            value = data.pop(key, None)
            if value is not None and not isinstance(value, str):
                raise PublishRefused(400, f"data.{key} must be a string.", field=f"data.{key}")
            options[key] = value or None
        tenants = {tenant_of(g) for g in groups} - {None}
        users = {user_of(g) for g in groups} - {None}
        if len(tenants) > 1 or len(users) > 1:
            raise PublishRefused(
                400, "A system event addresses one tenant and/or one person.", field="channels"
            )
        data.setdefault("tenant_id", next(iter(tenants), None))
        data.setdefault("user_id", next(iter(users), None))
    missing = sorted(set(kind.fields) - set(data))
    unexpected = sorted(set(data) - set(kind.fields))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(u[:40] for u in unexpected[:10]))
        raise PublishRefused(
            400,
            f"data must hold exactly the payload fields of {kind.name} "
            f"({', '.join(kind.fields)}): {'; '.join(parts)}.",
            field=f"data.{(missing or unexpected)[0][:40]}",
        )
    try:
        return kind.build(data, **options)
    except (ValueError, KeyError, IndexError, TypeError) as refused:  # level, template
        raise PublishRefused(
            400, f"data does not fit {kind.name}: {refused}", field="data"
        ) from None


@csrf_exempt  # authenticated by the request signature, not by a cookie
@require_POST
def publish_view(request: HttpRequest, app_id: str, batch: bool = False) -> JsonResponse:
    """Pusher's `POST /apps/<app_id>/events` and `/batch_events`: store, then publish."""
    from django.db import transaction

    from notifications.events.broadcast import broadcast

    if not settings.PUSHER_APP_ID or app_id != settings.PUSHER_APP_ID:
        return JsonResponse(error_body("not_found", "Unknown app id."), status=404)
    params = {key.lower(): value for key, value in request.GET.items()}
    try:
        check_request_auth("POST", request.path, params, request.body)
        try:
            body = loads(request.body)
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
