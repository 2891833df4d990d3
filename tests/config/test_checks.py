"""config/checks.py: the RADIUS cache timings, and every RADIUS_* setting documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import override_settings

from config.checks import radius_cache_timing
from tests.liveserver import manage_check

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "overrides, check_id",
    [
        ({"RADIUS_CACHE_TIMEOUT": 0}, "hotspot.E005"),
        ({"RADIUS_CACHE_RETRIES": 0}, "hotspot.E005"),
        ({"RADIUS_CACHE_DROP_WAIT": -1}, "hotspot.E006"),
        ({"RADIUS_CACHE_DROP_WAIT": 5}, "hotspot.E006"),
        ({"RADIUS_CACHE_QUEUE_MAX": 0}, "hotspot.E007"),
    ],
)
def test_bad_radius_cache_timings_stop_the_start(overrides, check_id):
    assert radius_cache_timing() == []
    with override_settings(**overrides):
        assert [e.id for e in radius_cache_timing()] == [check_id]


def test_every_radius_setting_has_its_row_and_default_in_docs_radius_md():
    settings_text = (ROOT / "config" / "settings" / "base.py").read_text()
    docs = (ROOT / "docs" / "radius.md").read_text()
    declared = re.findall(
        r'^(RADIUS_\w+) = (?:\w+\()?(?:os\.environ\.get|env_list|env_number)\("\1", ([^)]*)\)',
        settings_text,
        re.M,
    )
    assert len(declared) >= 10
    for name, default in declared:
        row = re.search(rf"^\| [^|]*`{name}`[^|]* \| ([^|]*) \|", docs, re.M)
        assert row, f"{name} has no row in docs/radius.md's settings table"
        for value in re.findall(r'"([^"]+)"', default):
            assert f"`{value}`" in row.group(1) or value in row.group(1), (name, value)


@pytest.mark.parametrize(
    "name, value",
    [
        ("RADIUS_CACHE_TIMEOUT", "half a second"),
        ("RADIUS_CACHE_DROP_WAIT", "0,25"),
        ("RADIUS_CACHE_RETRIES", "3.5"),
        ("RADIUS_CACHE_TIMEOUT", "inf"),  # select(inf) raised in the sender: no drop was sent
        ("RADIUS_CACHE_DROP_WAIT", "nan"),
    ],
)
def test_a_radius_number_that_is_none_stops_the_start_naming_the_setting(name, value):
    """Not a bare ValueError from deep in the settings: the setting, its value, its default."""
    result = manage_check(**{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}={value!r} is not" in result.stderr, result.stderr
    assert "ValueError" not in result.stderr
