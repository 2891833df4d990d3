"""Sockets close within a second when their user loses access, and only those sockets."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import update_session_auth_hash
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest
from django.test import Client

from accounts import services as account_services
from accounts.models import User
from tenants import services as tenant_services
from tests.factories import DEFAULT_PASSWORD
from tests.notifications.wsutil import (
    access_token,
    committed_db,
    communicator,
    connect_user,
    expect_close,
    still_open,
)

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


async def open_socket(comm):
    connected, _ = await comm.connect(timeout=3)
    assert connected
    assert (await comm.receive_json_from(timeout=3))["type"] == "welcome"
    return comm


@database_sync_to_async
def signed_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cookie_of(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


async def test_logout_closes_that_sessions_sockets_only(staff):
    browser = await signed_in_client(staff)
    other_browser = await signed_in_client(staff)
    tab1 = await open_socket(communicator(cookie=cookie_of(browser)))
    tab2 = await open_socket(communicator(cookie=cookie_of(browser)))
    elsewhere = await open_socket(communicator(cookie=cookie_of(other_browser)))
    api_client = await open_socket(communicator(token=await access_token(staff)))

    await database_sync_to_async(browser.logout)()

    assert "Signed out" in (await expect_close(tab1, 4403, timeout=1))["reason"]
    await expect_close(tab2, 4403, timeout=1)
    await still_open(elsewhere)
    await still_open(api_client)
    for comm in (elsewhere, api_client):
        await comm.disconnect()


async def test_logout_through_the_admin_logout_view_closes_the_socket(system_admin):
    browser = Client()
    signed_in = await database_sync_to_async(browser.login)(
        username=system_admin.username, password=DEFAULT_PASSWORD
    )
    assert signed_in
    tab = await open_socket(communicator(cookie=cookie_of(browser)))
    response = await database_sync_to_async(browser.post)("/admin/logout/")
    assert response.status_code == 302  # LOGOUT_REDIRECT_URL
    await expect_close(tab, 4403, timeout=1)


@pytest.mark.parametrize("via", ["session", "header"])
async def test_suspending_a_user_closes_all_their_sockets(via, staff, tenant_admin):
    victim, _ = await connect_user(staff, via=via)
    second, _ = await connect_user(staff, via="query")
    bystander, _ = await connect_user(tenant_admin)
    await database_sync_to_async(account_services.user_suspend)(
        user=staff, reason="Unpaid", by=tenant_admin
    )
    assert "suspended" in (await expect_close(victim, 4403, timeout=1))["reason"]
    await expect_close(second, 4403, timeout=1)
    await still_open(bystander)
    await bystander.disconnect()


async def test_a_sign_in_lockout_leaves_the_persons_sockets_open(staff, settings):
    """Guessing locks the guessing address, not the account (anyone could trigger it)."""
    settings.LOGIN_FAILURE_LIMIT = 2
    victim, _ = await connect_user(staff, via="header")
    for _ in range(3):
        await database_sync_to_async(account_services.sign_in_failed)(
            username=staff.username, address="198.51.100.1"
        )
    await still_open(victim)
    await victim.disconnect()


async def test_deleting_a_user_closes_their_sockets(staff, tenant_admin):
    victim, _ = await connect_user(staff)
    bystander, _ = await connect_user(tenant_admin)
    await database_sync_to_async(account_services.user_delete)(user=staff, by=tenant_admin)
    await expect_close(victim, 4403, timeout=1)
    await still_open(bystander)
    await bystander.disconnect()


async def test_suspending_a_tenant_closes_its_users_sockets_only(
    staff, tenant_admin, other_admin, system_admin
):
    a_staff, _ = await connect_user(staff)
    a_admin, _ = await connect_user(tenant_admin, via="header")
    b_admin, _ = await connect_user(other_admin)
    root, _ = await connect_user(system_admin)
    await database_sync_to_async(tenant_services.tenant_suspend)(
        tenant=staff.tenant, reason="Fraud", by=system_admin
    )
    await expect_close(a_staff, 4403, timeout=1)
    await expect_close(a_admin, 4403, timeout=1)
    await still_open(b_admin)
    await still_open(root)
    for comm in (b_admin, root):
        await comm.disconnect()


async def test_a_rolled_back_suspension_closes_nothing(staff, tenant_admin):
    socket, _ = await connect_user(staff)

    @database_sync_to_async
    def suspend_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            account_services.user_suspend(user=staff, reason="oops", by=tenant_admin)
            raise RuntimeError("rolled back")

    await suspend_then_fail()
    assert await socket.receive_nothing(0.5)
    await still_open(socket)
    await socket.disconnect()


async def test_a_role_change_asks_the_socket_to_reconnect(staff, tenant_admin):
    socket, _ = await connect_user(staff)
    await database_sync_to_async(account_services.user_update)(
        user=staff, data={"role": "tenant_admin"}, by=tenant_admin
    )
    await expect_close(socket, 4409, timeout=1)
    _, welcome = await connect_user(await database_sync_to_async(User.objects.get)(pk=staff.pk))
    assert welcome["user"]["role"] == "tenant_admin"


async def test_a_password_change_ends_the_sessions_and_tokens_sockets_within_a_second(
    staff, settings
):
    """As on Django's pages and the API: every session of the user ends (the changing browser
    gets a new key, so its page reconnects, 4409, with its new cookie), and a JWT socket closes
    4401 as the API refuses its token. Within a second: the re-check timer is left at its
    default 60 s, so only the password change's own `notify.recheck` can close them."""
    this_browser = await signed_in_client(staff)
    other_browser = await signed_in_client(staff)
    this_tab = await open_socket(communicator(cookie=cookie_of(this_browser)))
    other_tab = await open_socket(communicator(cookie=cookie_of(other_browser)))
    api = await open_socket(communicator(token=await access_token(staff)))

    @database_sync_to_async
    def change_password_in_this_browser() -> str:
        user = account_services.user_change_password(
            user=staff, new_password="Another-Horse-77", by=staff
        )
        request = HttpRequest()
        request.session = this_browser.session
        request.user = user
        update_session_auth_hash(request, user)  # what the password-change page does
        request.session.save()
        return request.session.session_key

    new_cookie = await change_password_in_this_browser()
    await expect_close(other_tab, 4409, timeout=5)
    await expect_close(this_tab, 4409, timeout=5)
    closed = await expect_close(api, 4401, timeout=5)
    assert "Password changed" in closed["reason"]
    reconnected = await open_socket(communicator(cookie=new_cookie))  # the changing browser
    refused = communicator(cookie=cookie_of(other_browser))
    assert (await refused.connect(timeout=3))[0]
    assert (await refused.receive_output(3))["code"] == 4401
    await reconnected.disconnect()


async def test_a_password_change_closes_a_jwt_socket_whose_token_the_api_refuses(staff, client):
    """The API's rule (simplejwt CHECK_REVOKE_TOKEN): the old token is refused at once, and so
    is its socket; a token issued after the change connects and stays."""
    token = await access_token(staff)
    api = await open_socket(communicator(token=token))
    await database_sync_to_async(account_services.user_change_password)(
        user=staff, new_password="Another-Horse-77", by=staff
    )
    await expect_close(api, 4401, timeout=5)
    answer = await database_sync_to_async(client.get)(
        "/api/notifications/", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert answer.status_code == 401
    fresh = await open_socket(
        communicator(
            token=await access_token(await database_sync_to_async(User.objects.get)(pk=staff.pk))
        )
    )
    await still_open(fresh)
    await fresh.disconnect()


async def test_recheck_closes_a_socket_whose_close_message_was_lost(staff, settings):
    """Defence in depth: the slow re-check catches a change whose notify.close never arrived."""
    settings.NOTIFICATIONS_WS_RECHECK_SECONDS = 0.2
    socket, _ = await connect_user(staff)
    # Simulate a change whose close message was lost (e.g. Redis was down at that moment).
    await database_sync_to_async(User.objects.filter(pk=staff.pk).update)(
        status=User.Status.SUSPENDED, suspension_reason="x"
    )
    await expect_close(socket, 4403, timeout=2)


async def test_recheck_closes_a_socket_whose_session_is_gone(staff, settings):
    settings.NOTIFICATIONS_WS_RECHECK_SECONDS = 0.2
    browser = await signed_in_client(staff)
    tab = await open_socket(communicator(cookie=cookie_of(browser)))
    await database_sync_to_async(Session.objects.filter(session_key=cookie_of(browser)).delete)()
    assert "Session ended" in (await expect_close(tab, 4401, timeout=2))["reason"]


async def test_the_recheck_closes_every_socket_of_an_account_in_one_batch(
    staff, tenant_admin, settings
):
    """Many sockets, one re-check: each socket of the suspended account closes, the others stay.

    The process re-checks its sockets in batches (revocation.Rechecker), one answer per distinct
    credentials; a shared answer must still reach every socket it applies to.
    """
    settings.NOTIFICATIONS_WS_RECHECK_SECONDS = 0.3
    token = await access_token(staff)
    victims = [await open_socket(communicator(token=token)) for _ in range(4)]
    victims.append((await connect_user(staff))[0])
    bystander = (await connect_user(tenant_admin))[0]
    await database_sync_to_async(User.objects.filter(pk=staff.pk).update)(
        status=User.Status.SUSPENDED, suspension_reason="x"
    )
    for comm in victims:
        await expect_close(comm, 4403, timeout=5)
    await still_open(bystander)
    await bystander.disconnect()


async def test_still_allowed_many_answers_once_per_credentials(staff):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.realtime.revocation import Credentials, still_allowed, still_allowed_many

    creds = Credentials(user_id=staff.pk, role=staff.role, tenant_id=staff.tenant_id)
    changed = Credentials(user_id=staff.pk, role="tenant_admin", tenant_id=staff.tenant_id)

    def check() -> tuple[int, int, list]:
        with CaptureQueriesContext(connection) as one:
            assert still_allowed(creds) is None
        with CaptureQueriesContext(connection) as many:
            answers = still_allowed_many([creds] * 100 + [changed])
        return len(one), len(many), answers

    one, many, answers = await database_sync_to_async(check)()
    assert many <= 2 * one  # one socket's worth per distinct credentials, not a hundred
    assert answers == [None] * 100 + [(4409, "Account changed; reconnect.")]


async def test_a_closed_socket_is_not_kept_alive_by_the_recheck_queue(settings):
    """Under connection churn the re-check heap holds closed sockets' entries until they are due
    (up to 1.5 intervals): it must not hold the consumers themselves (~30 KiB each; the churn
    soak in test_faults.py grew by that per closed socket), and stays proportional to the open
    sockets."""
    import gc
    import weakref

    from notifications.realtime.revocation import Rechecker, SocketGuard

    settings.NOTIFICATIONS_WS_RECHECK_SECONDS = 3600
    rechecker = Rechecker(asyncio.get_running_loop())

    def guarded() -> SocketGuard:
        guard = SocketGuard()
        guard._guard_rechecker = rechecker
        guard._guard_entry = rechecker.add(guard, 3600)
        return guard

    still_open = [guarded() for _ in range(5)]
    closed = guarded()
    closed._guard_stop()
    gone = weakref.ref(closed)
    del closed
    gc.collect()
    assert gone() is None
    for _ in range(3000):  # churn: open and close, five stay open throughout
        guarded()._guard_stop()
    assert rechecker.live == 5
    assert len(rechecker.heap) <= 2 * 5 + 1024 + 1
    assert all(g._guard_entry is not None for g in still_open)
    for guard in still_open:
        guard._guard_stop()
    assert rechecker.heap == [] and rechecker.task is None
