"""fire_event: every option, every bad input (clear error, non-zero exit, nothing stored)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from notifications.models import StoredEvent
from tests.factories import PaymentFactory
from tests.notifications.conftest import run


def fire(*args: str) -> StoredEvent:
    call_command("fire_event", *args)
    return StoredEvent.objects.order_by("-id").first()


def targets(stored: StoredEvent) -> dict:
    return {t.group: t.roles for t in stored.targets.all()}


def test_system_notification_defaults_to_system_admins(db, capsys):
    stored = fire("SystemNotification", "--message", "Maintenance at 22:00")
    assert (stored.name, stored.level, stored.title) == (
        "SystemNotification",
        "info",
        "System Notification",
    )
    assert stored.message == "Maintenance at 22:00"
    assert targets(stored) == {"system.admin": None}
    assert f"Fired SystemNotification #{stored.id} to system.admin." in capsys.readouterr().out


def test_system_alert_addressed_to_a_tenant_and_a_user(tenant, staff):
    stored = fire(
        "SystemAlert",
        "--tenant",
        "acme",
        "--user",
        "acme-staff",
        "--title",
        "Heads up",
        "--level",
        "error",
    )
    assert (stored.title, stored.level) == ("Heads up", "error")
    assert targets(stored) == {f"tenant.{tenant.pk}": None, f"user.{staff.pk}": None}
    assert stored.data == {"tenant_id": tenant.pk, "user_id": staff.pk}


def test_domain_events_from_their_object(tenant, staff, package):
    payment = PaymentFactory(package=package)
    stored = fire("PaymentFailed", "--object", str(payment.pk))
    assert stored.data["payment_id"] == payment.pk
    assert targets(stored) == {f"tenant.{tenant.pk}": None}
    stored = fire("TenantSuspended", "--tenant", "acme")
    assert stored.data["tenant_id"] == tenant.pk
    stored = fire("UserCreated", "--user", "acme-staff", "--message", "Custom text")
    assert stored.message == "Custom text"
    assert targets(stored) == {f"tenant.{tenant.pk}": ["tenant_admin"]}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["NoSuchEvent"], "Unknown event 'NoSuchEvent'. Known events: TenantCreated"),
        (["SystemAlert", "--tenant", "nope"], "No tenant with slug 'nope'. Known: acme"),
        (["SystemAlert", "--user", "ghost"], "No user with username 'ghost'"),
        (["SystemAlert", "--level", "fatal"], "Unknown level 'fatal'; use one of success, info"),
        (["SystemAlert", "--message", "  "], "--message must not be empty"),
        (["SystemAlert", "--object", "1"], "SystemAlert has no object"),
        (["UserCreated"], "UserCreated needs its User: give --object ID or --user USERNAME"),
        (["PaymentFailed", "--object", "999999"], "No Payment with id 999999"),
        (["PaymentFailed", "--object", "abc"], "--object must be a Payment id (a number)"),
        (
            ["PaymentFailed", "--tenant", "acme"],
            "PaymentFailed needs its Payment: give --object ID",
        ),
        (["UserCreated", "--object", "{other}", "--tenant", "acme"], "does not belong to tenant"),
    ],
)
def test_bad_input_is_a_clear_error_and_stores_nothing(tenant, other_admin, args, error):
    args = [a.replace("{other}", str(other_admin.pk)) for a in args]
    with pytest.raises(CommandError, match=error.replace("(", r"\(").replace(")", r"\)")):
        call_command("fire_event", *args)
    assert not StoredEvent.objects.exists()


def _manage(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unknown_event_exits_non_zero():
    result = _manage("fire_event", "NoSuchEvent")
    assert result.returncode != 0
    assert "Unknown event 'NoSuchEvent'" in result.stderr


def _database_url(connection) -> str:
    """A URL for the test database this process uses, for a second process."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(name).resolve()}"
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name}"


FROM_AFAR = {
    "fire_event": ["fire_event", "SystemAlert", "--tenant", "acme", "--message", "From afar"],
    "shell": [
        "shell",
        "-c",
        "broadcast(SystemAlert.create(tenant=Tenant.objects.get(slug='acme'), "
        "message='From afar'))",
    ],
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.live
@pytest.mark.parametrize("how", list(FROM_AFAR))
async def test_event_fired_in_another_process_reaches_the_group_without_delay(
    tenant, listen, running_publisher, how
):
    """The embedded default: another process (fire_event, or the one-line shell helper)
    cannot reach this process's in-memory layer; it stores the event and this process's
    publisher delivers it at its next poll, 0.2 s later (with Redis the other process's
    NOTIFY or the servers' poll). Either way it arrives at once; the bound leaves room for a
    busy machine."""
    listener = await listen(f"tenant.{tenant.pk}")
    url = await run(_database_url)(connection)
    result = await asyncio.to_thread(_manage, *FROM_AFAR[how], env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    async with asyncio.timeout(10):
        while not (events := await listener.events(timeout=1.0)):
            await asyncio.sleep(0.05)
    [(name, frame)] = events
    assert (name, frame["message"], frame["channel"]) == (
        "SystemAlert",
        "From afar",
        f"tenant.{tenant.pk}",
    )
    assert await run(lambda: StoredEvent.objects.get().published_at is not None)()
