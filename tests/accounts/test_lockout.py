"""Sign-in guessing: counted per (username, address) and per address, a ceiling per account.

Through the real endpoints (token API, /accounts/login/, /admin/login/). A lock refuses before
the password is looked at, so it answers the same whatever the password; it never suspends the
account (the person's other sessions and sockets are untouched).
"""

import re
import time

import pytest
from django.contrib.auth import authenticate
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts import signals
from accounts.models import User
from accounts.services import login_block_reason
from tests.concurrency import run_concurrently
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db
ATTACKER = "198.51.100.66"
OWNER = "203.0.113.7"


def token(username, password="wrong", address=ATTACKER):
    return APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def page(username, password="wrong", address=ATTACKER, url="/accounts/login/"):
    return Client(REMOTE_ADDR=address).post(url, {"username": username, "password": password})


def masked(response):
    """The page without what differs between any two answers (times, CSRF tokens)."""
    text = re.sub(r"\d\d:\d\d", "HH:MM", response.content.decode())
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)


def reload(user):
    return User.objects.get(pk=user.pk)


def locks(signal_log):
    return [kwargs for name, kwargs in signal_log if name == "sign_in_locked"]


def test_four_failures_do_not_lock(staff, signal_log):
    for _ in range(4):
        assert token("acme-staff").status_code == 401
    assert token("acme-staff", DEFAULT_PASSWORD).status_code == 200
    assert locks(signal_log) == []


def test_fifth_failure_locks_the_pair_and_signals_without_suspending(staff, signal_log):
    for _ in range(4):
        token("acme-staff")
    response = token("acme-staff")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "sign_in_locked"
    assert int(response["Retry-After"]) > 29 * 60
    [lock] = locks(signal_log)
    assert lock["user"] == staff and lock["username"] == "acme-staff"
    assert lock["address"] == ATTACKER and lock["until"] is not None
    user = reload(staff)
    assert user.status == User.Status.ACTIVE and login_block_reason(user) is None
    assert "account_suspended" not in [name for name, _ in signal_log]


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_a_locked_sign_in_page_answers_the_same_whatever_the_password(url, staff, system_admin):
    username = "root-admin" if url.startswith("/admin") else "acme-staff"
    for _ in range(5):
        page(username, url=url)
    wrong = page(username, url=url)
    right = page(username, DEFAULT_PASSWORD, url=url)
    assert right.status_code == wrong.status_code == 200
    assert "_auth_user_id" not in right.client.session
    assert "Too many failed sign-in attempts" in right.content.decode()
    assert masked(right) == masked(wrong)


def test_a_locked_token_endpoint_answers_the_same_whatever_the_password(staff):
    for _ in range(5):
        token("acme-staff")
    wrong, right = token("acme-staff"), token("acme-staff", DEFAULT_PASSWORD)
    assert right.status_code == wrong.status_code == 429
    assert right.json() == wrong.json()
    assert "access" not in right.json()


def test_the_lock_is_the_attackers_only_the_owner_signs_in_from_elsewhere(staff, signal_log):
    for _ in range(30):  # far past every per-address limit
        token("acme-staff")
    assert token("acme-staff", DEFAULT_PASSWORD).status_code == 429
    response = token("acme-staff", DEFAULT_PASSWORD, address=OWNER)
    assert response.status_code == 200 and "access" in response.json()
    assert page("acme-staff", DEFAULT_PASSWORD, address=OWNER).status_code == 302


@override_settings(LOGIN_FAILURE_LIMIT=3, LOGIN_ADDRESS_FAILURE_LIMIT=8)
def test_failures_during_a_lock_are_counted(staff, tenant_admin, signal_log):
    """Guessing on through a pair's lock adds up to the address's lock: every name is locked."""
    for _ in range(3):
        token("acme-staff")
    assert [lock["address"] for lock in locks(signal_log)] == [ATTACKER]
    for _ in range(5):  # refused unseen, but counted
        assert token("acme-staff", DEFAULT_PASSWORD).status_code == 429
    address_lock = locks(signal_log)[-1]
    assert address_lock["user"] is None and address_lock["username"] == ""
    assert address_lock["address"] == ATTACKER
    assert token("acme-admin", DEFAULT_PASSWORD).status_code == 429  # never guessed, same address
    assert token("acme-admin", DEFAULT_PASSWORD, address=OWNER).status_code == 200


@override_settings(
    LOGIN_ACCOUNT_FAILURE_LIMIT=6, LOGIN_ACCOUNT_SLOWDOWN_SECONDS=1, LOGIN_FAILURE_LIMIT=1000
)
def test_distributed_guessing_is_slowed_per_account_never_locked(staff):
    for n in range(6):  # six addresses, one guess each: no per-address limit is reached
        assert token("acme-staff", address=f"192.0.2.{n + 1}").status_code == 401
    first = token("acme-staff", address="192.0.2.100")  # past the ceiling: one per second
    assert first.status_code == 401  # admitted (wrong password)
    slowed = token("acme-staff", DEFAULT_PASSWORD, address="192.0.2.101")
    assert slowed.status_code == 429 and "this account" in slowed.json()["error"]["message"]
    deadline = time.monotonic() + 30
    while True:  # the owner gets in as soon as the next slot opens
        response = token("acme-staff", DEFAULT_PASSWORD, address=OWNER)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 200


def test_the_sign_in_page_answers_alike_for_known_and_unknown_usernames(tenant_admin):
    for _ in range(4):
        assert masked(page("acme-admin")) == masked(page("nobody-here")).replace(
            "nobody-here", "acme-admin"
        )
    known, unknown = page("acme-admin"), page("nobody-here")  # the 5th: both lock now
    assert "Too many failed sign-in attempts" in known.content.decode()
    assert masked(known) == masked(unknown).replace("nobody-here", "acme-admin")


def test_a_successful_sign_in_forgets_its_failures(staff):
    for _ in range(4):
        token("acme-staff")
    assert token("acme-staff", DEFAULT_PASSWORD).status_code == 200
    for _ in range(4):  # not five in a row counting the earlier four
        assert token("acme-staff").status_code == 401
    assert token("acme-staff", DEFAULT_PASSWORD).status_code == 200


def test_failures_do_not_touch_an_admin_suspension(tenant_admin, staff):
    from accounts.services import user_suspend

    user_suspend(user=staff, reason="Left the company", by=tenant_admin)
    for _ in range(5):
        token("acme-staff")
    user = reload(staff)
    assert user.suspended_until is None and user.suspension_reason == "Left the company"
    assert "has been suspended" in login_block_reason(user)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_failures_are_all_counted_and_lock_once():
    """A burst of parallel guesses must not slip past the limit through lost updates."""
    from tests.factories import TenantFactory, TenantStaffFactory

    TenantStaffFactory(tenant=TenantFactory(slug="acme"), username="target")
    started = []

    def on_locked(sender, **kwargs):
        started.append(kwargs)

    signals.sign_in_locked.connect(on_locked)
    try:
        answers = run_concurrently(
            lambda _: authenticate(None, username="target", password="wrong"), 8
        )
    finally:
        signals.sign_in_locked.disconnect(on_locked)
    assert answers == [None] * 8
    assert len(started) == 1 and started[0]["username"] == "target"
    assert authenticate(None, username="target", password=DEFAULT_PASSWORD) is None
