"""Real server processes for every live and browser test: THE one helper.

`Daphne` / `Uvicorn`: the ASGI app in a child process on a free port (or a given one, to
restart in place), with the test settings and database (`server_env`, PostgreSQL or SQLite,
Redis when given) or an environment of the caller's (tests/browser/live.py: a seeded demo
site). `RedisServer`: a throw-away redis-server to stop and restart. Plus an HTTP client with
cookies and CSRF (`Browser`), other OS processes (`run_shell`, `run_manage`) and websocket
helpers. Importable without Django settings (docs/screenshots/take.py uses it too).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import shutil
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
from websockets.exceptions import ConnectionClosed

BASE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_servers() -> str:
    """DATABASE_URL of the database the tests run on (call once the test DB exists)."""
    from django.db import connection

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
    """`daphne -b 127.0.0.1 -p <port> config.asgi:application` as a child process.

    `port`: a free one by default; a given one restarts a server where its clients expect it.
    """

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(),
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def command(self) -> list[str]:
        return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port)] + [
            "config.asgi:application"
        ]

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


class Uvicorn(Daphne):
    """The production server (docs/deployment.md): one uvicorn worker with ASGI lifespan."""

    def command(self) -> list[str]:
        return [str(BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1"] + [
            "--port", str(self.port), "--lifespan", "on", "--log-level", "warning"
        ]  # fmt: skip


class RedisServer:
    """A throw-away redis-server process (no persistence) that can be stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


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
    from rest_framework_simplejwt.tokens import RefreshToken

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
