"""Who is on a socket, and which groups they may join: the one rule for every socket endpoint.

Authentication (ASGI middleware, `SocketAuthMiddlewareStack`) puts a `SocketAuth` in
`scope["socket_auth"]` (and the user in `scope["user"]`); it never rejects by itself, so the
consumer can accept-then-close with a code the client sees (4401/4403). Authorization is
`allowed_groups(user)` / `may_join(user, channel)`: pure functions of the user row (no ORM), shared
by `/ws/notifications/` and the Pusher endpoint (`/broadcasting/auth`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

# Close codes of every socket endpoint (documented in docs/protocol.md).
CLOSE_UNAUTHENTICATED = 4401  # no/invalid/expired credentials: sign in (or refresh) and reconnect
CLOSE_FORBIDDEN = 4403  # blocked, logged out, suspended, deleted, tenant suspended: do not retry
CLOSE_RECONNECT = 4409  # the account changed (role, password): reconnect to get the new rights
CLOSE_RATE_LIMITED = 4429  # the client sent frames faster than allowed

SYSTEM_ADMIN_GROUP = "system.admin"


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def payment_group(payment_id: int) -> str:
    """One payment's group: only the portal socket opened with that payment's token joins it."""
    return f"payment.{payment_id}"


def session_group(session_key: str) -> str:
    """Internal group of one login session's sockets (closed together on logout)."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:32]


def allowed_groups(user: Any) -> list[str]:
    """The public groups `user` may join, in welcome order; THE authorization rule.

    Tenant users: their tenant's group and their own user group. System admins: system.admin and
    their own user group (never tenant groups). Anyone else: nothing. Reads only fields of the
    user row, so it is safe on the event loop.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    role = getattr(user, "role", None)
    if role == "system_admin":
        return [SYSTEM_ADMIN_GROUP, user_group(user.pk)]
    if role in ("tenant_admin", "staff") and user.tenant_id is not None:
        return [tenant_group(user.tenant_id), user_group(user.pk)]
    return []


def may_join(user: Any, channel: str) -> bool:
    """Whether `user` may receive events of `channel` (a public group name)."""
    return isinstance(channel, str) and channel in allowed_groups(user)


@dataclass(frozen=True)
class SocketAuth:
    """Outcome of a handshake's authentication (the consumer acts on `error`)."""

    user: Any
    method: str | None = None  # "session" | "jwt"
    error: str | None = None  # None | "unauthenticated" | "blocked"
    detail: str = ""  # human reason, sent as the close reason
    expires_at: float | None = None  # JWT "exp" (unix seconds): the socket closes then
    session_key: str | None = None

    @property
    def close_code(self) -> int | None:
        if self.error is None:
            return None
        return CLOSE_FORBIDDEN if self.error == "blocked" else CLOSE_UNAUTHENTICATED


def _refused(detail: str, method: str | None) -> SocketAuth:
    return SocketAuth(user=AnonymousUser(), method=method, error="unauthenticated", detail=detail)


def _checked(user: Any, **fields: Any) -> SocketAuth:
    """Apply the platform's sign-in rule (blocked users, pending/suspended tenants)."""
    from accounts.services import login_block_reason

    reason = login_block_reason(user)  # loads user.tenant once, off the event loop
    if reason:
        return SocketAuth(user=AnonymousUser(), error="blocked", detail=reason, **fields)
    return SocketAuth(user=user, **fields)


def user_from_token(raw: str) -> SocketAuth:
    """Authenticate a simplejwt access token (sync: reads the user row)."""
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        token = AccessToken(raw)
        user = JWTAuthentication().get_user(token)
    except (TokenError, InvalidToken, AuthenticationFailed):
        return _refused("Invalid or expired token.", "jwt")
    return _checked(user, method="jwt", expires_at=float(token["exp"]))


def user_from_session(session: Any) -> SocketAuth:
    """Authenticate a Django session exactly as an HTTP request would (sync)."""
    from django.contrib.auth import get_user

    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated:
        return _refused("Not signed in.", None)
    return _checked(user, method="session", session_key=session.session_key)


def bearer_token(scope: dict) -> str | None:
    """The access token of a handshake: `Authorization: Bearer` header, else `?token=`.

    Other Authorization schemes (e.g. Basic auth of a proxy in front of the site) are ignored.
    """
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin1").partition(" ")
            if scheme.lower() == "bearer":
                return credentials.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    tokens = query.get("token")
    return tokens[0] if tokens else None


def authenticate_scope(scope: dict) -> SocketAuth:
    """A token, when given, decides (an invalid one is refused, never a fallback to the cookie)."""
    token = bearer_token(scope)
    if token is not None:
        return user_from_token(token)
    session = scope.get("session")
    if session is None:
        return _refused("Not signed in.", None)
    return user_from_session(session)


class SocketAuthMiddleware:
    """Puts `socket_auth` and `user` in every WebSocket scope (one DB round trip)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            auth = await database_sync_to_async(authenticate_scope)(scope)
            scope = dict(scope, user=auth.user, socket_auth=auth)
        return await self.inner(scope, receive, send)


def SocketAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 (Channels' naming style)
    """Cookies → Django session → token-or-session authentication."""
    return CookieMiddleware(SessionMiddleware(SocketAuthMiddleware(inner)))


class BrowserOriginValidator(OriginValidator):
    """An Origin header, when present, must be one of ALLOWED_HOSTS; none is allowed.

    Browsers always send Origin on a WebSocket handshake, so cross-site hijacking is refused.
    Non-browser clients (scripts, mobile SDKs, pusher-js on Node) usually send none; they still
    have to authenticate, and cannot ride on a victim's cookies.
    """

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def AllowedHostsOriginValidator(application: Any) -> BrowserOriginValidator:  # noqa: N802
    """Like Channels' validator of the same name, but lets Origin-less (non-browser) clients in."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed_hosts)
