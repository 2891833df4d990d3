"""Handshake authentication (session cookie, JWT header or ?token=), origin check, block rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import services as account_services
from tenants import services as tenant_services
from tests.factories import TenantAdminFactory, TenantFactory
from tests.notifications.wsutil import (
    access_token,
    committed_db,
    communicator,
    connect_user,
    expect_close,
    session_cookie,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


async def assert_refused(comm, code: int) -> dict:
    """Accepted, then closed with `code` before any data frame (the client sees the code)."""
    connected, _ = await comm.connect(timeout=3)
    assert connected
    message = await comm.receive_output(3)
    assert message["type"] == "websocket.close", message
    assert message["code"] == code
    return message


async def test_anonymous_is_closed_4401():
    await assert_refused(communicator(), 4401)


async def test_unknown_session_cookie_is_closed_4401():
    await assert_refused(communicator(cookie="not-a-session"), 4401)


@pytest.mark.parametrize("kind", ["header", "query"])
async def test_garbage_token_is_closed_4401(kind, staff):
    comm = communicator(**{"token" if kind == "header" else "query_token": "abc.def.ghi"})
    await assert_refused(comm, 4401)


async def test_expired_token_is_closed_4401(staff):
    token = await database_sync_to_async(AccessToken.for_user)(staff)
    token.set_exp(lifetime=-timedelta(seconds=5))
    await assert_refused(communicator(token=str(token)), 4401)


async def test_refresh_token_is_not_an_access_token(staff):
    refresh = await database_sync_to_async(RefreshToken.for_user)(staff)
    await assert_refused(communicator(token=str(refresh)), 4401)


async def test_token_signed_with_another_key_is_closed_4401(staff, settings):
    import jwt

    forged = jwt.encode(
        {"token_type": "access", "user_id": str(staff.pk), "exp": 4102444800, "jti": "x"},
        "another-secret-key-of-sufficient-length-0123456789",
        algorithm="HS256",
    )
    await assert_refused(communicator(token=forged), 4401)


async def test_an_invalid_token_never_falls_back_to_the_cookie(staff):
    cookie = await session_cookie(staff)
    await assert_refused(communicator(cookie=cookie, token="bad"), 4401)


async def test_basic_authorization_header_is_ignored_and_the_cookie_used(staff):
    cookie = await session_cookie(staff)
    comm = communicator(cookie=cookie, headers=[(b"authorization", b"Basic dXNlcjpwYXNz")])
    connected, _ = await comm.connect(timeout=3)
    assert connected
    assert (await comm.receive_json_from())["type"] == "welcome"
    await comm.disconnect()


async def test_session_of_a_deleted_user_is_closed_4401(tenant_admin, staff):
    cookie = await session_cookie(staff)
    await database_sync_to_async(account_services.user_delete)(user=staff, by=tenant_admin)
    await assert_refused(communicator(cookie=cookie), 4401)


async def test_inactive_user_is_closed_4401(staff):
    cookie = await session_cookie(staff)
    token = await access_token(staff)
    staff.is_active = False
    await database_sync_to_async(staff.save)(update_fields=["is_active"])
    await assert_refused(communicator(cookie=cookie), 4401)
    await assert_refused(communicator(token=token), 4401)


@pytest.mark.parametrize("via", ["session", "header"])
async def test_suspended_user_is_closed_4403_with_the_reason(via, staff, tenant_admin):
    cookie = await session_cookie(staff)
    token = await access_token(staff)
    await database_sync_to_async(account_services.user_suspend)(
        user=staff, reason="Unpaid", by=tenant_admin
    )
    comm = communicator(cookie=cookie) if via == "session" else communicator(token=token)
    message = await assert_refused(comm, 4403)
    assert "suspended" in message["reason"]


async def test_user_of_a_suspended_tenant_is_closed_4403(staff, system_admin):
    token = await access_token(staff)
    await database_sync_to_async(tenant_services.tenant_suspend)(
        tenant=staff.tenant, reason="Fraud", by=system_admin
    )
    await assert_refused(communicator(token=token), 4403)


async def test_user_of_a_pending_tenant_is_closed_4403(db):
    pending = await database_sync_to_async(TenantFactory)(slug="gamma", status="pending")
    admin = await database_sync_to_async(TenantAdminFactory)(tenant=pending)
    await assert_refused(communicator(token=await access_token(admin)), 4403)


async def test_foreign_origin_is_rejected_at_the_handshake(staff):
    cookie = await session_cookie(staff)
    comm = communicator(cookie=cookie, origin="https://evil.example")
    connected, _ = await comm.connect(timeout=3)
    assert not connected


async def test_the_sites_own_origin_is_accepted(staff):
    cookie = await session_cookie(staff)
    comm = communicator(
        cookie=cookie, origin="http://localhost:8000", headers=[(b"host", b"localhost:8000")]
    )
    connected, _ = await comm.connect(timeout=3)
    assert connected
    assert (await comm.receive_json_from())["type"] == "welcome"
    await comm.disconnect()


async def test_non_browser_client_without_origin_is_accepted(staff):
    comm = communicator(token=await access_token(staff), origin=None)
    connected, _ = await comm.connect(timeout=3)
    assert connected
    assert (await comm.receive_json_from())["type"] == "welcome"
    await comm.disconnect()


async def test_jwt_socket_closes_4401_when_its_token_expires(staff):
    token = await database_sync_to_async(AccessToken.for_user)(staff)
    token.set_exp(lifetime=timedelta(seconds=3))  # "exp" has whole seconds: 2-3 s from now
    comm = communicator(token=str(token))
    connected, _ = await comm.connect(timeout=3)
    assert connected
    assert (await comm.receive_json_from())["type"] == "welcome"
    await comm.send_json_to({"action": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    message = await expect_close(comm, 4401, timeout=5)
    assert "expired" in message["reason"]


async def test_session_socket_has_no_expiry_timer(staff):
    comm, _ = await connect_user(staff)
    assert await comm.receive_nothing(1.2)
    await comm.disconnect()


# -- batched handshakes (realtime.batch): one thread hop for concurrent handshakes ----------


async def _welcomed(comm) -> bool:
    connected, _ = await comm.connect(timeout=5)
    assert connected
    message = await comm.receive_output(5)
    if message["type"] == "websocket.close":
        return False
    assert '"welcome"' in message["text"]
    await comm.disconnect()
    return True


async def test_concurrent_handshakes_are_authenticated_in_one_batch_each_on_its_own(
    staff, tenant_admin
):
    import asyncio

    from notifications.realtime import auth

    good = await access_token(tenant_admin)
    suspended = await access_token(staff)
    await database_sync_to_async(account_services.user_suspend)(
        user=staff, reason="Unpaid", by=tenant_admin
    )
    batches: list[int] = []
    real = auth.authenticate_many

    def counting(credentials):
        batches.append(len(credentials))
        return real(credentials)

    auth.authenticate_many = counting
    try:
        comms = [communicator(token=good) for _ in range(6)]
        comms += [communicator(token=suspended) for _ in range(3)]
        comms += [communicator(token="garbage"), communicator(cookie="no-such-session")]
        results = await asyncio.gather(*(_welcomed(c) for c in comms))
    finally:
        auth.authenticate_many = real
    assert results == [True] * 6 + [False] * 5
    assert sum(batches) == len(comms)
    assert len(batches) < len(comms)  # handshakes shared a thread hop


async def test_a_verified_token_is_refused_once_its_user_is_suspended(staff, tenant_admin):
    token = await access_token(staff)
    assert await _welcomed(communicator(token=token))  # verified (and cached) once
    await database_sync_to_async(account_services.user_suspend)(
        user=staff, reason="Unpaid", by=tenant_admin
    )
    message = await assert_refused(communicator(token=token), 4403)
    assert "suspended" in message["reason"]


async def test_a_verified_token_is_refused_after_a_password_change(staff):
    token = await access_token(staff)
    assert await _welcomed(communicator(token=token))

    def change() -> None:
        staff.set_password("a-brand-new-password-1")
        staff.save(update_fields=["password"])

    await database_sync_to_async(change)()
    await assert_refused(communicator(token=token), 4401)


async def test_a_verified_token_is_refused_once_it_expires(staff):
    import asyncio
    import time

    token = await database_sync_to_async(AccessToken.for_user)(staff)
    token.set_exp(lifetime=timedelta(seconds=6))  # room for a busy machine's first handshake
    assert await _welcomed(communicator(token=str(token)))
    await asyncio.sleep(max(0.0, float(token["exp"]) - time.time()) + 0.2)
    await assert_refused(communicator(token=str(token)), 4401)


async def test_socket_ids_and_channel_names_are_distinct():
    from notifications.realtime.protocol import SOCKET_ID_RE, new_socket_id

    ids = {new_socket_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(SOCKET_ID_RE.match(i) for i in ids)


async def _outcome(comm) -> int | str:
    """ "welcome", or the close code the client saw."""
    connected, _ = await comm.connect(timeout=5)
    assert connected
    message = await comm.receive_output(5)
    await comm.disconnect()
    return "welcome" if message["type"] != "websocket.close" else message["code"]


async def _in_one_batch(comms) -> list[int | str]:
    """Every handshake's outcome, all of them authenticated by one `authenticate_many` call
    (the batch is held until every handshake waits in it)."""
    import asyncio

    from notifications.realtime import auth
    from notifications.realtime.batch import thread_batch

    batch = thread_batch(auth.authenticate_many)
    assert not batch.running
    batch.running = True  # as while a run is in the thread: new questions wait for the next
    outcomes = [asyncio.create_task(_outcome(c)) for c in comms]
    for _ in range(2000):  # up to 20 s on a loaded machine
        if len(batch.waiting) == len(comms):
            break
        await asyncio.sleep(0.01)
    assert len(batch.waiting) == len(comms)
    batch._task = asyncio.get_running_loop().create_task(batch._run())
    return list(await asyncio.gather(*outcomes))


@database_sync_to_async
def _corrupt_session() -> str:
    """A stored session whose user id the account table cannot hold (hand-edited, or left by
    another user model): Django's get_user raises on it instead of answering anonymous."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store["_auth_user_id"] = "not-a-number"
    store["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
    store["_auth_user_hash"] = "x"
    store.create()
    return store.session_key


@database_sync_to_async
def _token_with_bad_user_claim(user) -> str:
    token = AccessToken.for_user(user)
    token["user_id"] = ["not", "an", "id"]  # validly signed, but no account can match it
    return str(token)


async def test_a_corrupt_credential_refuses_its_socket_alone_not_its_batch(staff, tenant_admin):
    good_cookie = await session_cookie(staff)
    good_token = await access_token(tenant_admin)
    comms = [communicator(cookie=good_cookie), communicator(token=good_token)]
    comms += [communicator(cookie=await _corrupt_session())]
    comms += [communicator(token=await _token_with_bad_user_claim(staff))]
    comms += [communicator(cookie=good_cookie)]
    assert await _in_one_batch(comms) == ["welcome", "welcome", 4401, 4401, "welcome"]


# -- the batch's reads: sessions in one read, their accounts in one query --------------------


def _signed_in(user) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _session_batch(staff, tenant_admin) -> tuple[list, list]:
    """Sessions of two people (one twice), plus one unknown and one with corrupt data."""
    others = [TenantAdminFactory(tenant=staff.tenant) for _ in range(3)]
    keys = [_signed_in(u) for u in [staff, tenant_admin, *others]] + [_signed_in(staff)]
    keys += ["no-such-session-key-at-all"]
    expected = [staff.pk, tenant_admin.pk, *(u.pk for u in others), staff.pk, None]
    return [("session", k) for k in keys], expected


def _who(answers) -> list:
    return [a.user.pk if a.error is None else None for a in answers]


@pytest.mark.parametrize(
    ("engine", "queries"),
    [
        ("django.contrib.sessions.backends.db", 2),  # the sessions, then their accounts
        ("django.contrib.sessions.backends.cache", 1),  # one get_many, then the accounts
        # the cached ones, then the misses (the unknown key) in one query, then the accounts
        ("django.contrib.sessions.backends.cached_db", 2),
    ],
)
def test_a_batch_reads_its_sessions_at_once_with_the_configured_engine(
    engine, queries, settings, staff, tenant_admin, django_assert_num_queries
):
    from notifications.realtime.auth import authenticate_many

    settings.SESSION_ENGINE = engine
    credentials, expected = _session_batch(staff, tenant_admin)
    with django_assert_num_queries(queries):
        answers = authenticate_many(credentials)
    assert _who(answers) == expected
    assert [a.session_key for a in answers[:-1]] == [k for _, k in credentials[:-1]]


def test_cached_db_sessions_missing_from_the_cache_are_read_in_one_query_and_cached(
    settings, staff, tenant_admin, django_assert_num_queries
):
    from django.core.cache import caches

    from notifications.realtime.auth import authenticate_many

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    credentials, expected = _session_batch(staff, tenant_admin)
    credentials, expected = credentials[:-1], expected[:-1]  # all stored
    caches[settings.SESSION_CACHE_ALIAS].clear()  # e.g. the cache restarted
    with django_assert_num_queries(2):
        assert _who(authenticate_many(credentials)) == expected
    with django_assert_num_queries(1):  # the next batch finds them cached again
        assert _who(authenticate_many(credentials)) == expected


def test_a_session_of_an_old_password_or_corrupt_data_is_refused_in_the_batch(staff, tenant_admin):
    from django.contrib.sessions.models import Session

    from notifications.realtime.auth import authenticate_many

    old, corrupt, good = _signed_in(staff), _signed_in(tenant_admin), _signed_in(tenant_admin)
    Session.objects.filter(session_key=corrupt).update(session_data="%%% not a session :::")
    staff.set_password("a-brand-new-password-1")
    staff.save(update_fields=["password"])
    answers = authenticate_many([("session", old), ("session", corrupt), ("session", good)])
    assert [(a.error, a.close_code) for a in answers] == [
        ("unauthenticated", 4401),
        ("unauthenticated", 4401),
        (None, None),
    ]
    assert not Session.objects.filter(session_key=old).exists()  # flushed, as a request would


def test_a_session_signed_under_a_fallback_secret_is_kept_as_it_is(staff, settings):
    """During a SECRET_KEY rotation a socket accepts a session whose hash matches a fallback
    key, and neither deletes nor renames it (nothing on a socket saves a cycled session: the
    browser would be signed out and the socket left in a group no sign-out names)."""
    from django.contrib.sessions.models import Session

    from notifications.realtime.auth import authenticate_many

    old_key = settings.SECRET_KEY
    key = _signed_in(staff)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "x" * 40, [old_key]
    [answer] = authenticate_many([("session", key)])
    assert answer.error is None and answer.user.pk == staff.pk
    assert answer.session_key == key
    assert Session.objects.filter(session_key=key).exists()


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Every signature verification (simplejwt's TokenBackend.decode), by raw token."""
    from rest_framework_simplejwt.backends import TokenBackend

    seen: list[str] = []
    real = TokenBackend.decode

    def counting(self, token, verify=True):
        seen.append(token)
        return real(self, token, verify)

    monkeypatch.setattr(TokenBackend, "decode", counting)
    return seen


def _token(user_id: int, *, seconds: float = 300) -> str:
    token = AccessToken()
    token["user_id"] = user_id
    token.set_exp(lifetime=timedelta(seconds=seconds))
    return str(token)


def test_a_tokens_signature_is_verified_once_its_expiry_on_every_use(decodes):
    import time_machine
    from rest_framework_simplejwt.exceptions import TokenError

    from notifications.realtime import auth

    raw = _token(1, seconds=60)
    assert auth._verified(raw)["user_id"] == auth._verified(raw)["user_id"] == 1
    assert decodes == [raw]
    with time_machine.travel(timedelta(seconds=120)):  # past exp and simplejwt's leeway
        for _ in range(2):
            with pytest.raises(TokenError):
                auth._verified(raw)
    assert decodes == [raw]  # expiry checked without verifying the signature again
    with pytest.raises(TokenError):
        auth._verified(raw[:-2] + ("A" if raw[-2] != "A" else "B") + raw[-1])  # bad signature


def test_a_token_in_use_stays_verified_while_many_others_come_and_go(decodes):
    """The cache is bounded by least recent use: a full cache does not forget the token of a
    socket that reconnects all the time (it used to be emptied at once)."""
    from notifications.realtime import auth

    hot = _token(1)
    auth._verified(hot)
    for n in range(5000):
        auth._verified(_token(n + 2))
        if n % 100 == 0:
            auth._verified(hot)
    assert decodes.count(hot) == 1
