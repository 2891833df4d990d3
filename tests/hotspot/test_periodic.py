"""PERIODIC_TASKS: each entry names a plain function the runner can call with no arguments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from hotspot.models import HotspotSession, HotspotUser
from tests.factories import HotspotSessionFactory, HotspotUserFactory

pytestmark = pytest.mark.django_db


def test_entries_are_importable_and_positive():
    for name in ("hotspot_expire_users", "hotspot_close_stale_sessions", "hotspot_silent_routers"):
        entry = settings.PERIODIC_TASKS[name]
        assert callable(import_string(entry["task"])) and entry["every"] > 0


def test_every_task_runs_with_no_arguments_and_does_its_job():
    past = timezone.now() - timedelta(hours=3)
    user = HotspotUserFactory(starts_at=past, expires_at=past + timedelta(hours=1))
    session = HotspotSessionFactory(last_heard=past, started_at=past)
    results = {
        name: import_string(entry["task"])() for name, entry in settings.PERIODIC_TASKS.items()
    }
    assert results["hotspot_expire_users"] == 1
    assert results["hotspot_close_stale_sessions"] == 1
    assert HotspotUser.objects.get(pk=user.pk).status == "expired"
    assert HotspotSession.objects.get(pk=session.pk).status == "stale"
