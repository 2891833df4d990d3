"""Production settings: refuse to start without SECRET_KEY; `check --deploy` is clean."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.liveserver import production_payment_env

ROOT = Path(__file__).resolve().parents[2]
PUSHER = {"PUSHER_APP_ID": "1", "PUSHER_APP_KEY": "key", "PUSHER_APP_SECRET": "secret"}
PAYMENTS = production_payment_env()


def manage(*args, **env):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DJANGO_SETTINGS_MODULE"}
        and not key.startswith("PUSHER_")
    }
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.production", **PUSHER, **PAYMENTS)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_secret_key():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set in the environment." in result.stderr


def test_refuses_to_start_without_pusher_credentials():
    result = manage("check", SECRET_KEY=secrets.token_urlsafe(50), PUSHER_APP_SECRET="")
    assert result.returncode != 0
    assert "PUSHER_APP_SECRET must be set in the environment." in result.stderr


def test_check_deploy_is_clean():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="hotspot.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_debug_in_production_is_reported():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="hotspot.example.com",
        DEBUG="true",
    )
    assert result.returncode != 0 and "security.W018" in result.stderr + result.stdout


def test_seed_demo_refuses_under_production_settings():
    result = manage("seed_demo", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "seed_demo refuses to run" in result.stderr


def test_production_refuses_the_published_development_pusher_secret():
    """With it, an unauthenticated socket could sign `private-tenant.<id>` itself."""
    result = manage(
        "check",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="hotspot.example.com",
        PUSHER_APP_SECRET="hotspot-local-secret-not-for-production",
    )
    assert result.returncode != 0
    assert "hotspot.E001" in result.stderr and "PUSHER_APP_SECRET" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production"),
        ("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdefghijklmnop"),
        ("PUSHER_APP_KEY", "hotspot-local-key"),
        ("PUSHER_APP_SECRET", "test-secret-0123456789"),
    ],
)
def test_check_deploy_refuses_every_published_development_key(name, value):
    env = {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "hotspot.example.com"}
    env[name] = value
    result = manage("check", "--deploy", **env)
    assert result.returncode != 0
    assert name in result.stderr and "published development value" in result.stderr


def test_check_deploy_under_local_settings_names_its_dev_keys():
    result = manage(
        "check",
        "--deploy",
        DJANGO_SETTINGS_MODULE="config.settings.local",
        PUSHER_APP_KEY="",
        PUSHER_APP_SECRET="",  # local's defaults: the published dev app
    )
    assert result.returncode != 0
    assert "hotspot.E002" in result.stderr
    for name in ("SECRET_KEY", "PUSHER_APP_KEY", "PUSHER_APP_SECRET"):
        assert f"{name} is a published development value" in result.stderr
