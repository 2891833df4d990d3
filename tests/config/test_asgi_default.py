"""A server started without DJANGO_SETTINGS_MODULE never runs the local (development) settings."""

from __future__ import annotations

import secrets

import pytest

from tests.liveserver import Uvicorn, clean_env, get, production_payment_env, wait_until

pytestmark = pytest.mark.live


def test_without_settings_module_or_secret_key_the_server_refuses_to_start():
    server = Uvicorn(clean_env())
    try:
        wait_until(lambda: server.process.poll() is not None, 60, "the server to exit")
        assert server.process.returncode != 0
        assert "SECRET_KEY must be set in the environment." in server.output()
    finally:
        server.stop()


def test_without_settings_module_the_server_runs_production_settings(tmp_path):
    env = clean_env(
        SECRET_KEY=secrets.token_urlsafe(50),
        PUSHER_APP_ID="1",
        PUSHER_APP_KEY="key",
        PUSHER_APP_SECRET="secret",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **production_payment_env(),
    )
    env.pop("REDIS_URL", None)
    server = Uvicorn(env)
    try:
        server.wait_ready()
        # Production redirects plain HTTP to HTTPS (local settings would serve the page).
        status, headers, _ = get(server.http + "/no-such-page/")
        assert status == 301
        assert headers["Location"] == f"https://127.0.0.1:{server.port}/no-such-page/"
        # Behind the proxy (HTTPS): HSTS, and no debug page listing the URL patterns.
        status, headers, body = get(
            server.http + "/no-such-page/", headers={"X-Forwarded-Proto": "https"}
        )
        assert status in {404, 500}
        assert "Strict-Transport-Security" in headers
        assert "URLconf" not in body and "Traceback" not in body
    finally:
        server.stop()
