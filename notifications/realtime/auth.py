"""Who is on a socket, and which groups they may join: the one rule for every socket endpoint.

Authentication (ASGI middleware, `SocketAuthMiddlewareStack`) puts a `SocketAuth` in
`scope["socket_auth"]` (and the user in `scope["user"]`); it never rejects by itself, so the
consumer can accept-then-close with a code the client sees (4401/4403). Authorization
(who may join what) is notifications.realtime.access.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from notifications.realtime.access import policy_block_reason
from notifications.realtime.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED


@dataclass(frozen=True)
class SocketAuth:
    """Outcome of a handshake's authentication (the consumer acts on `error`)."""

    user: Any
    method: str | None = None  # "session" | "jwt"
    error: str | None = None  # None | "unauthenticated" | "blocked"
    detail: str = ""  # human reason, sent as the close reason
    expires_at: float | None = None  # JWT "exp" (unix seconds): the socket closes then
    session_key: str | None = None
    token_claims: dict | None = None  # JWT user id + password-hash claims (the re-check's rule)

    def credentials(self) -> Any:
        """What the socket's guard re-checks (notifications.realtime.revocation.Credentials)."""
        from notifications.realtime.revocation import Credentials

        return Credentials(
            user_id=self.user.pk,
            role=self.user.role,
            tenant_id=self.user.tenant_id,
            session_key=self.session_key,
            token_claims=self.token_claims,
            expires_at=self.expires_at,
        )

    @property
    def close_code(self) -> int | None:
        if self.error is None:
            return None
        return CLOSE_FORBIDDEN if self.error == "blocked" else CLOSE_UNAUTHENTICATED


def _refused(detail: str, method: str | None) -> SocketAuth:
    return SocketAuth(user=AnonymousUser(), method=method, error="unauthenticated", detail=detail)


def _checked(user: Any, **fields: Any) -> SocketAuth:
    """Apply the platform's sign-in rule (blocked users, pending/suspended tenants)."""
    reason = policy_block_reason(user)  # loads user.tenant once, off the event loop
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
    from notifications.realtime.revocation import token_claims

    return _checked(
        user, method="jwt", expires_at=float(token["exp"]), token_claims=token_claims(token)
    )


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
