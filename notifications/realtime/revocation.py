"""Revocation, both sides: closing the sockets of whoever loses access, and the socket's guard.

Server side (`close_*`, `recheck_user`): logout, suspension, deletion, tenant suspension,
password change. Socket side (`SocketGuard`, `still_allowed`): the ONE set of revocation,
re-check and token-expiry rules that /ws/notifications/ and the Pusher endpoint share.

A `notify.close` channel-layer message goes to the group that holds exactly the affected
sockets, after the transaction commits (a rolled-back suspension closes nothing). A layer failure
is logged, never raised into the user's request; the consumer's slow re-check timer closes the
socket anyway in that case. Which domain signals lead here: notifications/events/receivers.py.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
import weakref
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction

from notifications.conf import notification_settings as conf
from notifications.realtime.access import fresh_user
from notifications.realtime.batch import thread_batch
from notifications.realtime.groups import session_group, tenant_group, user_group
from notifications.realtime.protocol import (
    CLOSE_FORBIDDEN,
    CLOSE_RECONNECT,
    CLOSE_UNAUTHENTICATED,
    close_message,
)
from notifications.realtime.send import group_send

logger = logging.getLogger(__name__)


def close_group(group: str, *, code: int = CLOSE_FORBIDDEN, reason: str = "") -> None:
    """Close every socket in `group`, once the current transaction (if any) commits."""
    transaction.on_commit(partial(group_send, group, close_message(code, reason)), robust=True)


def close_session(session_key: str) -> None:
    """One login session signed out: only that session's sockets."""
    close_group(session_group(session_key), reason="Signed out.")


def close_user(user_id: int, reason: str) -> None:
    close_group(user_group(user_id), reason=reason)


def reconnect_user(user_id: int, reason: str) -> None:
    """The account's rights changed: its sockets reconnect to get the new ones (4409)."""
    close_group(user_group(user_id), code=CLOSE_RECONNECT, reason=reason)


def close_tenant(tenant_id: int, reason: str) -> None:
    close_group(tenant_group(tenant_id), reason=reason)


def recheck_user(user_id: int, reason: str) -> None:
    """The account's credentials changed (password): its sockets re-check them now.

    Each socket applies its own rule (`still_allowed`): a JWT socket whose token the API now
    refuses closes 4401; a cookie socket whose session ended closes 4409 (the page reconnects
    with the cookie it holds now, if any); the others stay.
    """
    message = {"type": "notify.recheck", "reason": reason}
    transaction.on_commit(partial(group_send, user_group(user_id), message), robust=True)


# --- the socket side: one guard for every authenticated socket endpoint ----------------------


@dataclass(frozen=True)
class Credentials:
    """What a socket was let in with: re-checked by the timer and on `notify.recheck`.

    `token_claims` holds the JWT's user-id and password-hash claims (simplejwt's
    CHECK_REVOKE_TOKEN): the socket refuses the token exactly when the API would.
    """

    user_id: int
    role: str | None
    tenant_id: int | None
    session_key: str | None = None
    token_claims: dict[str, Any] | None = None
    expires_at: float | None = None

    def as_message(self) -> dict[str, Any]:
        """The fields of a `pusher.grant` layer message (plain JSON)."""
        return {
            "user_id": self.user_id,
            "role": self.role,
            "tenant_id": self.tenant_id,
            # the layer is internal (like the session store): the re-check needs the key
            "session_key": self.session_key,
            "token_claims": self.token_claims,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Credentials:
        key = message.get("session_key")
        claims = message.get("token_claims")
        expires = message.get("expires_at")
        return cls(
            user_id=message["user_id"],
            role=message.get("role"),
            tenant_id=message.get("tenant_id"),
            session_key=key if isinstance(key, str) and key else None,
            token_claims=claims if isinstance(claims, dict) else None,
            expires_at=float(expires) if isinstance(expires, int | float) else None,
        )


def token_claims(token: Any) -> dict[str, Any]:
    """The claims of a validated access token the re-check needs (user id, password hash)."""
    from rest_framework_simplejwt.settings import api_settings

    claims = {api_settings.USER_ID_CLAIM: token[api_settings.USER_ID_CLAIM]}
    revoke = token.get(api_settings.REVOKE_TOKEN_CLAIM)
    if revoke is not None:
        claims[api_settings.REVOKE_TOKEN_CLAIM] = revoke
    return claims


def watch_groups(creds: Credentials) -> list[str]:
    """The groups whose `notify.close` / `notify.recheck` must reach a socket of `creds`.

    Every endpoint joins all of them, whatever it subscribed to: a tenant's suspension closes a
    Pusher socket subscribed only to `private-user.<id>` too.
    """
    found = [user_group(creds.user_id)]
    if creds.tenant_id is not None and creds.role != "system_admin":
        found.append(tenant_group(creds.tenant_id))
    if creds.session_key:
        found.append(session_group(creds.session_key))
    return found


def still_allowed(creds: Credentials, *, password_changed: bool = False) -> tuple[int, str] | None:
    """Re-check a live socket's credentials now; a close (code, reason) or None. Sync (ORM).

    The same rules as a new request: the session must still exist and belong to the user with
    the current password (Django's session auth hash); a token must still pass simplejwt's
    `get_user` (the API's refusal after a password change); the account must pass the sign-in
    rule; and a changed role or tenant reconnects for the new rights.
    """
    from django.conf import settings
    from django.contrib.auth import get_user
    from django.utils.module_loading import import_string
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

    if creds.session_key is not None:
        ended = CLOSE_RECONNECT if password_changed else CLOSE_UNAUTHENTICATED
        store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(creds.session_key)
        # Expired, cleared, or rotated (Django cycles the key on a password change): the page
        # reconnects with its current cookie, or signs in again.
        if not store.exists(creds.session_key):
            return ended, "Session ended."
        if get_user(SimpleNamespace(session=store)).pk != creds.user_id:  # password changed
            return ended, "Session ended."
    if creds.token_claims is not None:
        try:
            JWTAuthentication().get_user(creds.token_claims)
        except (AuthenticationFailed, InvalidToken) as refused:
            detail = refused.detail if isinstance(refused.detail, dict) else {}
            if str(detail.get("code", "")) == "password_changed":
                return CLOSE_UNAUTHENTICATED, "Password changed; sign in again."
            return CLOSE_UNAUTHENTICATED, "Token refused; sign in again."
    user, refusal = fresh_user(creds.user_id)
    if user is None:
        return CLOSE_FORBIDDEN, refusal
    if (user.role, user.tenant_id) != (creds.role, creds.tenant_id):
        return CLOSE_RECONNECT, "Account changed; reconnect."
    return None


def still_allowed_many(
    batch: list[Credentials], *, password_changed: bool = False
) -> list[tuple[int, str] | None]:
    """`still_allowed` for many sockets in one call (one thread hop, one database connection).

    Sockets let in with the same credentials (a person's tabs, one token on many sockets) get
    one answer: the rule reads only the credentials and the database. A failure answers None
    for those sockets (a database hiccup must not drop healthy sockets).
    """
    answers: dict[Any, tuple[int, str] | None] = {}
    out = []
    for creds in batch:
        key = _creds_key(creds)
        if key not in answers:
            try:
                answers[key] = still_allowed(creds, password_changed=password_changed)
            except Exception:
                logger.warning("socket re-check failed", exc_info=True)
                answers[key] = None
        out.append(answers[key])
    return out


def _recheck_many_password_changed(batch: list[Credentials]) -> list[tuple[int, str] | None]:
    return still_allowed_many(batch, password_changed=True)


def _creds_key(creds: Credentials) -> Any:
    claims = creds.token_claims
    return (
        creds.user_id,
        creds.role,
        creds.tenant_id,
        creds.session_key,
        None if claims is None else tuple(sorted((k, repr(v)) for k, v in claims.items())),
    )


class Rechecker:
    """One per event loop: re-checks every guarded socket of the process, in batches.

    Each socket is due every NOTIFICATIONS_WS_RECHECK_SECONDS (the first time after a random
    0.5-1.5 intervals, so sockets that connected together spread out). One task sleeps until the
    next socket is due, then re-checks everything due within a tenth of an interval (at most a
    second) in one `still_allowed_many` call: no task, thread hop or database connection per
    socket. A socket that lost its rights is revoked in a task of its own.
    """

    # Sockets per thread call: enough to amortize the hop, few enough that a batch of distinct
    # credentials (~1-2 ms each) does not hold the database thread from handshakes for long.
    BATCH_MAX = 200

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Weak: a closed socket's entry stays in the heap until it is due (lazy deletion), and
        # must not keep the consumer (~30 KiB) alive for up to 1.5 re-check intervals meanwhile.
        self.heap: list[tuple[float, int, weakref.ref[SocketGuard]]] = []
        self.seq = itertools.count()
        self.task: asyncio.Task | None = None
        self.wake: asyncio.Future | None = None
        self.revoking: set[asyncio.Task] = set()
        self.live = 0

    def add(self, guard: SocketGuard, delay: float) -> int:
        """Guard a new socket, first due in `delay` s; its entry id (kept in `_guard_entry`)."""
        self.live += 1
        return self._push(guard, delay)

    def remove(self) -> None:
        """A guarded socket stopped; with none left the task ends (no timer outlives them)."""
        self.live -= 1
        if self.live <= 0:
            self.live = 0
            self.heap.clear()
            if self.task is not None and not self.task.done():
                self.task.cancel()
            self.task = None
        elif len(self.heap) > 2 * self.live + 1024:
            # Under churn most entries are closed sockets': drop them so the heap stays
            # proportional to the open sockets (a wake-up is spurious at worst).
            self.heap[:] = [item for item in self.heap if _entry_live(item)]
            heapq.heapify(self.heap)

    def _push(self, guard: SocketGuard, delay: float) -> int:
        entry = next(self.seq)
        due = self.loop.time() + delay
        heapq.heappush(self.heap, (due, entry, weakref.ref(guard)))
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run(), name="socket-recheck")
        elif self.heap[0][1] == entry and self.wake is not None and not self.wake.done():
            self.wake.set_result(None)  # sooner than the task sleeps for
        return entry

    async def _run(self) -> None:
        heap = self.heap
        while heap:
            now = self.loop.time()
            if heap[0][0] > now:
                self.wake = self.loop.create_future()
                handle = self.loop.call_at(heap[0][0], _wake, self.wake)
                try:
                    await self.wake
                finally:
                    handle.cancel()
                    self.wake = None
                continue
            horizon = now + min(1.0, conf.WS_RECHECK_SECONDS / 10)
            batch: list[tuple[SocketGuard, Credentials]] = []
            while heap and heap[0][0] <= horizon and len(batch) < self.BATCH_MAX:
                _, entry, ref = heapq.heappop(heap)
                guard = ref()
                if guard is None or guard._guard_entry != entry:
                    continue  # closed (and maybe collected) since
                creds = guard._guard_creds
                if creds is not None:
                    batch.append((guard, creds))
            if not batch:
                continue
            try:
                verdicts = await database_sync_to_async(still_allowed_many)([c for _, c in batch])
            except Exception:  # e.g. the thread pool is shutting down: try again next time
                logger.warning("socket re-check failed", exc_info=True)
                verdicts = [None] * len(batch)
            interval = conf.WS_RECHECK_SECONDS
            for (guard, creds), verdict in zip(batch, verdicts, strict=True):
                if guard._guard_entry is None:
                    continue  # closed meanwhile
                if verdict is None or guard._guard_creds is not creds:
                    guard._guard_entry = self._push(guard, interval)
                    continue
                guard._guard_stop()
                task = self.loop.create_task(guard._revoke(*verdict))
                self.revoking.add(task)
                task.add_done_callback(self.revoking.discard)


def _entry_live(item: tuple[float, int, weakref.ref[SocketGuard]]) -> bool:
    guard = item[2]()
    return guard is not None and guard._guard_entry == item[1]


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


_recheckers: dict[asyncio.AbstractEventLoop, Rechecker] = {}


def rechecker() -> Rechecker:
    """This event loop's re-checker (those of closed loops are forgotten)."""
    loop = asyncio.get_running_loop()
    found = _recheckers.get(loop)
    if found is None:
        for old in [lp for lp in _recheckers if lp.is_closed()]:
            del _recheckers[old]
        found = _recheckers[loop] = Rechecker(loop)
    return found


class SocketGuard:
    """Consumer mixin: the revocation, re-check and expiry rules of every socket endpoint.

    The consumer calls `_guard(creds)` once it knows who is on the socket (handshake, or a
    Pusher grant) and implements `_revoke(code, reason)` (its own way of closing, e.g. the
    Pusher error code). Then: `notify.close` on any of `watch_groups` closes it (after commit,
    within a message's latency); `notify.recheck` re-checks now (password change); the process's
    `Rechecker` re-checks it every NOTIFICATIONS_WS_RECHECK_SECONDS (what no message announces,
    and closes lost while the layer was down); a token's `exp` closes it 4401 on the second (a
    timer handle, not a task per socket).
    """

    _guard_creds: Credentials | None = None
    _guard_entry: int | None = None  # this socket's place in the Rechecker (None: not guarded)
    _guard_expiry: asyncio.TimerHandle | None = None
    _guard_tasks: set[asyncio.Task] | None = None
    _guard_rechecker: Rechecker

    async def _revoke(self, code: int, reason: str) -> None:
        raise NotImplementedError

    async def _guard(self, creds: Credentials) -> None:
        self._guard_creds = creds
        for group in watch_groups(creds):
            await self._guard_join(group)
        if self._guard_expiry is not None:
            self._guard_expiry.cancel()
            self._guard_expiry = None
        loop = asyncio.get_running_loop()
        if creds.expires_at is not None:
            delay = max(0.0, creds.expires_at - time.time())
            self._guard_expiry = loop.call_at(loop.time() + delay, self._guard_expired)
        if self._guard_entry is None:
            interval = conf.WS_RECHECK_SECONDS
            # Spread sockets that connected together (a server restart) over the interval.
            delay = interval * (0.5 + random.random())  # noqa: S311 (jitter, not security)
            self._guard_rechecker = rechecker()
            self._guard_entry = self._guard_rechecker.add(self, delay)

    async def _guard_join(self, group: str) -> None:
        groups = self.groups  # type: ignore[attr-defined]
        if group not in groups:
            await self.channel_layer.group_add(group, self.channel_name)  # type: ignore[attr-defined]
            groups.append(group)

    def _guard_stop(self) -> None:
        if self._guard_entry is not None:
            self._guard_entry = None
            self._guard_rechecker.remove()
        if self._guard_expiry is not None:
            self._guard_expiry.cancel()
            self._guard_expiry = None
        for task in self._guard_tasks or ():
            if task is not asyncio.current_task():
                task.cancel()

    def _guard_spawn(self, coro: Any) -> None:
        if self._guard_tasks is None:
            self._guard_tasks = set()
        task = asyncio.get_running_loop().create_task(coro)
        self._guard_tasks.add(task)
        task.add_done_callback(self._guard_tasks.discard)

    async def notify_recheck(self, message: dict) -> None:
        """The account's credentials changed: apply the rules now (within a second)."""
        await self._guard_check(password_changed=message.get("reason") == "password")

    async def _guard_check(self, *, password_changed: bool = False) -> bool:
        """Re-check now; close and return False when the socket lost its rights."""
        creds = self._guard_creds
        if creds is None:
            return True
        many = _recheck_many_password_changed if password_changed else still_allowed_many
        try:  # sockets re-checking together (a gap, a password change) share one thread hop
            verdict = await thread_batch(many).ask(creds)
        except Exception:  # a database hiccup must not drop healthy sockets
            logger.warning("socket re-check failed", exc_info=True)
            return True
        if verdict is None:
            return True
        self._guard_stop()
        await self._revoke(*verdict)
        return False

    def _guard_expired(self) -> None:
        self._guard_expiry = None
        self._guard_stop()
        self._guard_spawn(self._revoke(CLOSE_UNAUTHENTICATED, "Token expired."))
