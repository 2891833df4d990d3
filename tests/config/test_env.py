"""config/env.py: every number read from the environment goes through env_number, so a bad one
stops the start naming its variable instead of a bare ValueError (or a silent inf / nan)."""

from __future__ import annotations

import re
import runpy
import warnings
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_number
from hotspot.radius_asgi import RadiusFastPath
from tests.liveserver import PRODUCTION_SECRETS, manage_check

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "accounts", "hotspot", "notifications", "payments", "tenants")
#: int(os.environ...) / float(os.getenv(...)), on one line or several
BARE = re.compile(r"\b(?:int|float)\(\s*(?:os|__import__\(\"os\"\))\.(?:environ|getenv)")
SETTINGS = ROOT / "config" / "settings"


def numbers_in(module: str) -> list[tuple[str, type]]:
    """The (variable, kind) of each env_number(...) in a settings module."""
    text = (SETTINGS / f"{module}.py").read_text()
    found = re.findall(r'env_number\(\s*"(\w+)",\s*"[^"]*"(,\s*int)?\s*\)', text)
    return [(name, int if kind else float) for name, kind in found]


def test_no_number_is_read_from_the_environment_with_a_bare_int_or_float():
    bare = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            text = path.read_text()
            for match in BARE.finditer(text):
                bare.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert bare == [], "use config.env.env_number (a clear start-up error): " + ", ".join(bare)


def test_the_settings_read_their_numbers_with_env_number():
    names = {name for name, _ in numbers_in("base")}
    for name in ("MPESA_HTTP_TIMEOUT", "HEALTH_CHECK_TIMEOUT_SECONDS", "EMAIL_MAX_ATTEMPTS"):
        assert name in names
    assert ("SECURE_HSTS_SECONDS", int) in numbers_in("production")


@pytest.mark.parametrize(
    ("module", "name", "kind"),
    [(f"config.settings.{m}", *number) for m in ("base", "test") for number in numbers_in(m)],
)
@pytest.mark.parametrize("value", ["ten", "inf", "nan"])
def test_a_bad_number_in_the_settings_is_improperly_configured_naming_it(
    monkeypatch, module, name, kind, value
):
    """Each settings module read again (in this process) with one bad variable."""
    monkeypatch.setenv(name, value)
    what = "a whole number" if kind is int else "a finite number"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (runpy: already imported)
        with pytest.raises(ImproperlyConfigured, match=f"^{name}='{value}' is not {what}"):
            runpy.run_module(module)


@pytest.mark.parametrize(
    ("module", "name", "value"),
    [
        ("config.settings.test", "MPESA_HTTP_TIMEOUT", "10s"),
        ("config.settings.test", "HEALTH_CHECK_TIMEOUT_SECONDS", "inf"),
        ("config.settings.test", "EMAIL_MAX_ATTEMPTS", "12.5"),
        ("config.settings.production", "SECURE_HSTS_SECONDS", "one year"),
    ],
)
def test_a_bad_number_stops_the_start_naming_the_variable(module, name, value):
    env = PRODUCTION_SECRETS if module.endswith("production") else {}
    result = manage_check(module, drop=("DEBUG",), **env, **{name: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}={value!r} is not" in result.stderr, result.stderr
    assert "ValueError" not in result.stderr


def test_env_number_takes_the_default_when_unset_or_empty(monkeypatch):
    monkeypatch.delenv("SOME_SECONDS", raising=False)
    assert env_number("SOME_SECONDS", "2.5") == 2.5
    monkeypatch.setenv("SOME_SECONDS", " ")
    assert env_number("SOME_SECONDS", "3", int) == 3


def test_the_radius_fast_paths_threads_are_a_clear_error(monkeypatch):
    monkeypatch.setenv("RADIUS_DB_THREADS", "four")
    with pytest.raises(ImproperlyConfigured, match="^RADIUS_DB_THREADS='four'"):
        RadiusFastPath(inner=None)
