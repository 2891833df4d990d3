"""Five failed sign-ins in a row lock an account for 30 minutes, through Django's authenticate()."""

from datetime import timedelta

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import User
from accounts.services import login_block_reason
from tests.factories import DEFAULT_PASSWORD


def fail(username, times=1):
    for _ in range(times):
        assert authenticate(RequestFactory().post("/"), username=username, password="wrong") is None


def reload(user):
    return User.objects.get(pk=user.pk)


def test_four_failures_do_not_lock(staff, signal_log):
    fail("acme-staff", 4)
    user = reload(staff)
    assert user.failed_login_count == 4
    assert not user.is_suspended and login_block_reason(user) is None
    assert signal_log == []


def test_fifth_failure_locks_for_thirty_minutes(staff, signal_log):
    fail("acme-staff", 5)
    user = reload(staff)
    assert user.is_suspended and user.status == User.Status.SUSPENDED
    remaining = user.suspended_until - timezone.now()
    assert timedelta(minutes=29) < remaining <= timedelta(minutes=30)
    assert user.failed_login_count == 0
    assert "temporarily locked" in login_block_reason(user)
    [(name, kwargs)] = signal_log
    assert name == "account_suspended"
    assert kwargs["lockout"] is True and kwargs["by"] is None
    assert kwargs["until"] == user.suspended_until
    assert "5 failed sign-in attempts" in kwargs["reason"]


def test_right_password_during_lockout_is_still_refused(staff):
    fail("acme-staff", 5)
    # authenticate() checks only the password; login_block_reason is what every sign-in
    # path (admin, pages, JWT, WebSocket) asks next, and it refuses.
    user = authenticate(
        RequestFactory().post("/"), username="acme-staff", password=DEFAULT_PASSWORD
    )
    assert user is not None
    assert "temporarily locked" in login_block_reason(user)


def test_failures_during_lockout_neither_count_nor_extend_it(staff, signal_log):
    fail("acme-staff", 5)
    until = reload(staff).suspended_until
    fail("acme-staff", 7)
    user = reload(staff)
    assert user.suspended_until == until and user.failed_login_count == 0
    assert len(signal_log) == 1


def test_a_successful_sign_in_resets_the_count(client, staff):
    fail("acme-staff", 3)
    assert client.login(username="acme-staff", password=DEFAULT_PASSWORD)
    assert reload(staff).failed_login_count == 0
    fail("acme-staff", 4)  # not five *in a row* counting the earlier three
    assert not reload(staff).is_suspended


def test_lockout_runs_out(client, staff):
    fail("acme-staff", 5)
    # Thirty minutes later (moved in the database, not by sleeping):
    User.objects.filter(pk=staff.pk).update(suspended_until=timezone.now() - timedelta(seconds=1))
    user = reload(staff)
    assert not user.is_suspended and login_block_reason(user) is None
    assert client.login(username="acme-staff", password=DEFAULT_PASSWORD)
    user = reload(staff)
    assert user.status == User.Status.ACTIVE
    assert user.suspended_until is None and user.suspension_reason == ""


def test_a_lockout_that_ran_out_can_lock_again(staff, signal_log):
    fail("acme-staff", 5)
    User.objects.filter(pk=staff.pk).update(suspended_until=timezone.now() - timedelta(seconds=1))
    fail("acme-staff", 5)
    user = reload(staff)
    assert user.is_suspended and user.suspended_until > timezone.now()
    assert [name for name, _ in signal_log] == ["account_suspended", "account_suspended"]


def test_failures_do_not_turn_an_admin_suspension_into_a_lockout(tenant_admin, staff):
    from accounts.services import user_suspend

    user_suspend(user=staff, reason="Left the company", by=tenant_admin)
    fail("acme-staff", 5)
    user = reload(staff)
    assert user.suspended_until is None and user.suspension_reason == "Left the company"
    assert "has been suspended" in login_block_reason(user)


@pytest.mark.parametrize("username", ["nobody", ""])
def test_unknown_usernames_are_ignored(db, username, signal_log):
    fail(username, 5)
    assert signal_log == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_failures_are_all_counted_and_lock_once():
    """A burst of parallel guesses must not slip past the limit through lost updates."""
    import threading

    from django.db import connection

    from accounts import signals
    from tests.factories import TenantFactory, TenantStaffFactory

    user = TenantStaffFactory(tenant=TenantFactory(slug="acme"), username="target")
    suspensions = []

    def on_suspended(sender, **kwargs):
        suspensions.append(kwargs)

    signals.account_suspended.connect(on_suspended)
    barrier = threading.Barrier(8)

    def guess():
        try:
            barrier.wait(timeout=10)
            authenticate(None, username="target", password="wrong")
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=guess) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        signals.account_suspended.disconnect(on_suspended)
    user = reload(user)
    assert user.is_suspended
    assert len(suspensions) == 1 and suspensions[0]["lockout"] is True
