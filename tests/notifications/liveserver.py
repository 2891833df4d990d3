"""Real server processes for live tests: daphne on a free port, sharing the test database."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.exceptions import ConnectionClosed

BASE_DIR = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_servers() -> str:
    """DATABASE_URL of the database the tests run on (call once the test DB exists)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return (
        f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def server_env(*, redis_url: str | None, prefix: str | None = None) -> dict[str, str]:
    """Environment of a server (or shell) process: test settings, test DB, chosen layer."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url_for_servers(),
        PYTHONPATH=str(BASE_DIR),
        PYTHONUNBUFFERED="1",
    )
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CHANNELS_PREFIX"] = prefix or settings.CHANNELS_PREFIX
    return env


class Daphne:
    """`daphne -b 127.0.0.1 -p <free port> config.asgi:application` as a child process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port)]
            + ["config.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @classmethod
    def start(cls, env: dict[str, str], count: int = 1) -> list[Daphne]:
        """Start `count` servers at once and wait until all accept connections."""
        servers = [cls(env) for _ in range(count)]
        try:
            for server in servers:
                server.wait_ready()
        except Exception:
            for server in servers:
                server.stop()
            raise
        return servers

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/notifications/"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"daphne did not start:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # keep the 302 (its cookies are kept anyway)
        return None


class Browser:
    """A cookie-keeping HTTP client (stdlib) for real login/logout POSTs with CSRF."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, data: dict[str, str]) -> int:
        if "csrfmiddlewaretoken" not in data:
            data = {**data, "csrfmiddlewaretoken": self.cookie(settings.CSRF_COOKIE_NAME) or ""}
        request = urllib.request.Request(
            self.base + path,
            data=urllib.parse.urlencode(data).encode(),
            headers={"Referer": self.base + path},
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:  # 3xx without following, or a real error
            if 300 <= error.code < 400:
                return error.code
            raise

    def login(self, username: str, password: str, path: str = "/admin/login/") -> str:
        """Sign in through the real login form; returns the session cookie value."""
        page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "login page has no CSRF token"
        status = self.post(
            path,
            {"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        )
        session = self.cookie(settings.SESSION_COOKIE_NAME)
        assert status == 302 and session, f"login failed ({status})"
        return session

    def logout(self, path: str = "/admin/logout/") -> None:
        self.post(path, {})


def run_shell(env: dict[str, str], code: str, timeout: float = 60) -> str:
    """Run Python in another OS process through `manage.py shell -c` (same settings as a server)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """`manage.py <args>` in another OS process (e.g. fire_event), with a server's settings."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- websockets-client helpers --------------------------------------------------------------


@database_sync_to_async
def jwt_for(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


def cookie_header(session: str) -> dict[str, str]:
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}


async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect_close(ws, code: int, timeout: float = 5) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def nothing_arrives(ws, wait: float = 0.5) -> bool:
    try:
        frame = await asyncio.wait_for(ws.recv(), wait)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected frame {frame}")
