"""config.asgi.tune_gc: the GC settings a server process applies once, at start-up."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from config.asgi import server_started, tune_gc
from config.checks import gc_thresholds
from notifications.realtime.mailbox import freezer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gc_restored():
    """What tune_gc changes is process-wide: put it back for the other tests."""
    threshold, enabled = gc.get_threshold(), freezer.enabled
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    freezer.enabled = enabled


@pytest.mark.usefixtures("gc_restored")
def test_tune_gc_applies_the_settings_and_freezes_what_the_import_left():
    gc.unfreeze()
    with override_settings(GC_THRESHOLD_YOUNG=12345, ASGI_FREEZE_SOCKETS=False):
        tune_gc()
        assert gc.get_threshold()[0] == 12345
        assert gc.get_freeze_count() > 1000  # Django, the apps, the URL patterns
        assert freezer.enabled is False
    with override_settings(GC_THRESHOLD_YOUNG=20000, ASGI_FREEZE_SOCKETS=True):
        tune_gc()
        assert gc.get_threshold()[0] == 20000
        assert freezer.enabled is True


@pytest.mark.django_db
@pytest.mark.usefixtures("gc_restored")
def test_asgi_tune_gc_off_keeps_the_interpreters_thresholds():
    gc.set_threshold(700, 10, 10)
    freezer.enabled = False
    with override_settings(ASGI_TUNE_GC=False):
        server_started()
    assert gc.get_threshold() == (700, 10, 10)
    assert freezer.enabled is False


def test_a_zero_young_threshold_stops_the_start():
    assert gc_thresholds() == []
    with override_settings(GC_THRESHOLD_YOUNG=0):
        assert [e.id for e in gc_thresholds()] == ["hotspot.E008"]
    with override_settings(GC_THRESHOLD_YOUNG=3_000_000_000):  # gc.set_threshold would raise
        assert [e.id for e in gc_thresholds()] == ["hotspot.E008"]


def settings_from_env(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.ASGI_TUNE_GC, s.GC_THRESHOLD_YOUNG, s.ASGI_FREEZE_SOCKETS)"
    )
    environ = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", **env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True
    )


def test_the_gc_settings_come_from_the_environment():
    done = settings_from_env(ASGI_TUNE_GC="0", GC_THRESHOLD_YOUNG="5000", ASGI_FREEZE_SOCKETS="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "5000", "False"]
    bad = settings_from_env(GC_THRESHOLD_YOUNG="many")
    assert bad.returncode != 0
    assert "GC_THRESHOLD_YOUNG='many' is not a whole number" in bad.stderr
    typo = settings_from_env(ASGI_TUNE_GC="enabled")  # not quietly "off"
    assert typo.returncode != 0
    assert "ASGI_TUNE_GC='enabled' is not a switch" in typo.stderr
    words = settings_from_env(ASGI_TUNE_GC="off", ASGI_FREEZE_SOCKETS="Yes")
    assert words.returncode == 0, words.stderr
    assert words.stdout.split() == ["False", "100000", "True"]


def test_every_gc_setting_is_documented_with_its_default():
    from django.conf import settings

    docs = (ROOT / "docs" / "deployment.md").read_text()
    for name, shown in [
        ("ASGI_TUNE_GC", "1"),
        ("GC_THRESHOLD_YOUNG", str(settings.GC_THRESHOLD_YOUNG)),
        ("ASGI_FREEZE_SOCKETS", "1"),
    ]:
        assert f"`{name}` ({shown}" in docs, name
