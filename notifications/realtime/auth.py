"""Who is on a socket, and which groups they may join: the one rule for every socket endpoint.

Authentication (ASGI middleware, `SocketAuthMiddlewareStack`) puts a `SocketAuth` in
`scope["socket_auth"]` (and the user in `scope["user"]`); it never rejects by itself, so the
consumer can accept-then-close with a code the client sees (4401/4403). Authorization
(who may join what) is notifications.realtime.access.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http.cookie import parse_cookie
from django.utils.crypto import constant_time_compare

from notifications.realtime.access import policy_block_reason
from notifications.realtime.batch import thread_batch
from notifications.realtime.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED

logger = logging.getLogger(__name__)


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
    return authenticate_many([("jwt", raw)])[0]


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


def session_cookie(scope: dict) -> str | None:
    """The session key in the handshake's (first) Cookie header, as Channels' CookieMiddleware
    and SessionMiddleware would find it."""
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return parse_cookie(value.decode("latin1")).get(settings.SESSION_COOKIE_NAME)
    return None


Credential = tuple[str, str | None]  # ("jwt", raw token) | ("session", session key or None)


def handshake_credential(scope: dict) -> Credential:
    """A token, when given, decides (an invalid one is refused, never a fallback to the cookie)."""
    token = bearer_token(scope)
    if token is not None:
        return ("jwt", token)
    return ("session", session_cookie(scope))


def authenticate_scope(scope: dict) -> SocketAuth:
    """Authenticate one handshake's scope (sync; the middleware batches them instead)."""
    return authenticate_many([handshake_credential(scope)])[0]


@functools.lru_cache(maxsize=4096)
def _signed(raw: str) -> Any:
    """The access token, its signature, type and claims verified (once per process and raw
    token: they never change; the least recently used of 4096 go first). Raises simplejwt's
    TokenError like `AccessToken(raw)`, which is then not cached."""
    from rest_framework_simplejwt.tokens import AccessToken

    return AccessToken(raw)


def _verified(raw: str) -> Any:
    """The validated access token (signature, type, expiry): the signature from `_signed`, the
    expiry checked again at every use (with simplejwt's LEEWAY; a token's own current_time is
    the moment it was first verified)."""
    from rest_framework_simplejwt.utils import aware_utcnow

    token = _signed(raw)
    token.check_exp(current_time=aware_utcnow())
    return token


def _users_by_token(tokens: dict[str, Any]) -> dict[str, Any]:
    """The account of each validated token, read in one query, checked as simplejwt's
    `JWTAuthentication.get_user` checks it (exists, active, password unchanged)."""
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.utils import get_md5_hash_password

    field = api_settings.USER_ID_FIELD
    model = get_user_model()
    id_field = model._meta.get_field(field)
    ids: dict[str, Any] = {}
    for raw, token in tokens.items():
        try:  # a claim the column cannot hold ("abc", a list) is this token's refusal alone
            ids[raw] = id_field.to_python(token.get(api_settings.USER_ID_CLAIM))
        except (ValidationError, TypeError, ValueError):
            ids[raw] = None
    wanted = {i for i in ids.values() if i is not None}
    users = {
        str(getattr(u, field)): u
        for u in model.objects.select_related("tenant").filter(**{f"{field}__in": wanted})
    }
    found: dict[str, Any] = {}
    for raw, user_id in ids.items():
        user = users.get(str(user_id)) if user_id is not None else None
        if user is None:
            continue
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            continue
        if api_settings.CHECK_REVOKE_TOKEN and tokens[raw].get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            continue
        found[raw] = user
    return found


def authenticate_many(credentials: list[Credential]) -> list[SocketAuth]:
    """Authenticate the handshakes that arrived together (sync: one thread hop for all).

    Each distinct token and session is checked once, at the moment of the call: a right revoked
    before it is refused exactly as one at a time would be. The sessions are read in one query
    (or one cache `get_many`), the tokens' accounts in one, the sessions' in another. A
    credential that cannot be checked (corrupt session data, a claim of the wrong type)
    refuses its own sockets (4401), never the batch's.
    """
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.settings import api_settings

    from notifications.realtime.revocation import token_claims

    tokens: dict[str, Any] = {}
    answers: dict[Credential, SocketAuth] = {}
    for kind, value in credentials:
        if kind == "jwt" and value not in tokens and ("jwt", value) not in answers:
            try:
                tokens[value] = _verified(value)
            except TokenError:
                answers[("jwt", value)] = _refused("Invalid or expired token.", "jwt")
            except Exception:
                logger.warning("a handshake's token could not be checked", exc_info=True)
                answers[("jwt", value)] = _refused("Invalid or expired token.", "jwt")
            else:
                if api_settings.USER_ID_CLAIM not in tokens[value]:
                    del tokens[value]
                    answers[("jwt", value)] = _refused("Invalid or expired token.", "jwt")
    users = _users_by_token(tokens) if tokens else {}
    checked: dict[int, str | None] = {}  # the sign-in rule, once per person
    for raw, token in tokens.items():
        user = users.get(raw)
        if user is None:
            answers[("jwt", raw)] = _refused("Invalid or expired token.", "jwt")
            continue
        fields = {
            "method": "jwt",
            "expires_at": float(token["exp"]),
            "token_claims": token_claims(token),
        }
        if user.pk not in checked:
            try:
                checked[user.pk] = policy_block_reason(user)
            except Exception:
                logger.warning("a handshake's account could not be checked", exc_info=True)
                answers[("jwt", raw)] = _refused("Invalid or expired token.", "jwt")
                continue
        reason = checked[user.pk]
        if reason:
            answers[("jwt", raw)] = SocketAuth(
                user=AnonymousUser(), error="blocked", detail=reason, **fields
            )
        else:
            answers[("jwt", raw)] = SocketAuth(user=user, **fields)
    keys = {key for kind, key in credentials if kind == "session" and key is not None}
    sessions = _load_sessions(keys) if keys else {}
    session_users = _users_by_session(sessions) if sessions else {}
    for cred in credentials:
        if cred in answers:
            continue
        kind, key = cred
        if key is None:
            answers[cred] = _refused("Not signed in.", None)
            continue
        try:
            user = session_users[key]
            if isinstance(user, Exception):
                raise user
            if not user.is_authenticated:
                answers[cred] = _refused("Not signed in.", None)
            else:
                answers[cred] = _checked(
                    user, method="session", session_key=sessions[key].session_key
                )
        except Exception:  # e.g. a user id the column cannot hold: this socket alone
            logger.warning("a handshake's session could not be checked", exc_info=True)
            answers[cred] = _refused("Not signed in.", None)
    return [answers[cred] for cred in credentials]


def _load_sessions(keys: set[str]) -> dict[str, Any]:
    """The SESSION_ENGINE's store of each key, loaded together (as each store's `load` would).

    db: one query; cache: one `get_many`; cached_db: one `get_many`, then the misses in one
    query (and cached, as its `load` does). Other engines load each store on first use.
    """
    from django.contrib.sessions.backends.cache import SessionStore as CacheStore
    from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbStore
    from django.contrib.sessions.backends.db import SessionStore as DbStore
    from django.core.cache import caches
    from django.utils import timezone

    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    stores = {key: store_class(key) for key in keys}
    valid = {key for key, store in stores.items() if store.session_key is not None}
    cached = issubclass(store_class, CacheStore | CachedDbStore)
    if not cached and not issubclass(store_class, DbStore):
        return stores
    data: dict[str, dict] = {}
    if cached:
        cache = caches[settings.SESSION_CACHE_ALIAS]
        by_cache_key = {stores[key].cache_key: key for key in valid}
        try:
            found = cache.get_many(list(by_cache_key))
        except Exception:  # as the stores' `load`: an unreadable cache reads as a miss
            logger.warning("session cache read failed", exc_info=True)
            found = {}
        data = {by_cache_key[k]: v for k, v in found.items() if v is not None}
    if issubclass(store_class, DbStore):
        rows = store_class.get_model_class().objects.filter(
            session_key__in=valid - set(data), expire_date__gt=timezone.now()
        )
        for row in rows:
            store = stores[row.session_key]
            data[row.session_key] = store.decode(row.session_data)  # corrupt data: {}
            if cached:
                try:
                    expiry = store.get_expiry_age(expiry=row.expire_date)
                    cache.set(store.cache_key, data[row.session_key], expiry)
                except Exception:
                    logger.warning("session cache write failed", exc_info=True)
    for key, store in stores.items():
        if key not in data:
            store._session_key = None  # as `load` does for a session that is gone
        store._session_cache = data.get(key, {})
    return stores


def _users_by_session(sessions: dict[str, Any]) -> dict[str, Any]:
    """The user each session signs in (AnonymousUser: none; an exception: this one failed), as
    `django.contrib.auth.get_user` finds it, the ModelBackend accounts read in one query.

    The rule is Django's (5.2): the session names a configured backend and an account it may
    authenticate, whose session auth hash matches (a fallback secret's hash rotates it); a
    mismatch flushes the session. Backends with their own `get_user` are asked one by one.
    """
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user,
        get_user_model,
        load_backend,
    )
    from django.contrib.auth.backends import ModelBackend

    model = get_user_model()
    found: dict[str, Any] = {}
    wanted: dict[str, tuple[Any, Any]] = {}  # session key → (backend, user pk)
    for key, session in sessions.items():
        try:
            backend_path = session.get(BACKEND_SESSION_KEY)
            if SESSION_KEY not in session or backend_path not in settings.AUTHENTICATION_BACKENDS:
                found[key] = AnonymousUser()
                continue
            backend = load_backend(backend_path)
            if type(backend).get_user is not ModelBackend.get_user:
                found[key] = get_user(SimpleNamespace(session=session))
                continue
            wanted[key] = (backend, model._meta.pk.to_python(session[SESSION_KEY]))
        except Exception as exc:
            found[key] = exc
    pks = {pk for _, pk in wanted.values()}
    users = {u.pk: u for u in model._default_manager.select_related("tenant").filter(pk__in=pks)}
    for key, (backend, pk) in wanted.items():
        session, user = sessions[key], users.get(pk)
        try:
            if user is None or not backend.user_can_authenticate(user):
                found[key] = AnonymousUser()
                continue
            session_hash = session.get(HASH_SESSION_KEY)
            current = user.get_session_auth_hash()
            if session_hash and constant_time_compare(session_hash, current):
                found[key] = user
            elif session_hash and any(
                constant_time_compare(session_hash, fallback)
                for fallback in user.get_session_auth_fallback_hash()
            ):
                # Valid under a SECRET_KEY_FALLBACKS secret. Django's get_user would cycle the
                # session key here, but nothing on a socket saves the session: the browser's
                # session would be deleted (signed out) and this socket would join a key no
                # sign-out ever names. The next HTTP request rotates it; the re-check follows.
                found[key] = user
            else:
                session.flush()
                found[key] = AnonymousUser()
        except Exception as exc:
            found[key] = exc
    return found


class SocketAuthMiddleware:
    """Puts `socket_auth` and `user` in every WebSocket scope (no `session`: nothing reads it).

    Replaces Channels' cookie and session middleware on sockets: they wrapped every send of
    every socket (a session save check per frame that never saves on a WebSocket) and parsed
    cookies of handshakes that authenticate by token. Concurrent handshakes share one thread
    hop and one query (notifications.realtime.batch).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            auth = await thread_batch(authenticate_many).ask(handshake_credential(scope))
            scope = dict(scope, user=auth.user, socket_auth=auth)
        return await self.inner(scope, receive, send)


def SocketAuthMiddlewareStack(inner: Any) -> Any:  # noqa: N802 (Channels' naming style)
    """Token-or-session authentication, batched (the name predates the batching)."""
    return SocketAuthMiddleware(inner)


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
