"""`manage.py expire_hotspot_users [--loop SECONDS]`."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from hotspot.management.commands.expire_hotspot_users import run_loop
from hotspot.models import HotspotUser
from tests.factories import HotspotUserFactory


def due(package, n=1):
    past = timezone.now() - timedelta(hours=2)
    return HotspotUserFactory.create_batch(
        n, package=package, starts_at=past, expires_at=past + timedelta(hours=1)
    )


def run(*args):
    out = StringIO()
    call_command("expire_hotspot_users", *args, stdout=out)
    return out.getvalue()


def test_single_run_expires_due_users_and_says_how_many(package, signal_log):
    due(package, 3)
    HotspotUserFactory(package=package)  # still running
    assert "Expired 3 hotspot user(s)." in run()
    assert HotspotUser.objects.filter(status="expired").count() == 3
    assert [name for name, _ in signal_log] == ["hotspot_user_expired"] * 3
    assert "Expired 0 hotspot user(s)." in run()
    assert len(signal_log) == 3


def test_bounded_loop_runs_each_pass(package):
    due(package, 2)
    output = run("--loop", "0.01", "--iterations", "3")
    assert output.count("Expired") == 3
    assert "Expired 2 hotspot user(s)." in output
    assert HotspotUser.objects.filter(status="expired").count() == 2


def test_loop_picks_up_users_that_fall_due_between_passes(package):
    sleeps = []

    def step():
        from hotspot.services import expire_due_hotspot_users

        return expire_due_hotspot_users()

    def sleep(seconds):
        sleeps.append(seconds)
        due(package)  # a user's time ends while the loop waits

    assert run_loop(step, interval=30, iterations=3, sleep=sleep) == 2
    assert sleeps == [30, 30]  # no pointless sleep after the last pass


@pytest.mark.parametrize(
    "args", [("--loop", "0"), ("--loop", "-5"), ("--loop", "1", "--iterations", "0")]
)
def test_bad_loop_values_are_refused(db, args):
    with pytest.raises(CommandError):
        run(*args)
