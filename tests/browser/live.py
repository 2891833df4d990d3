"""A real daphne server on a free port with a temp SQLite DB + Debian's chromium via Playwright.

Shared by the browser tests (tests/browser/conftest.py) and docs/screenshots/take.py, so the
screenshots show exactly what the tests drive.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "Browser-Test-pw-42"
LISTENING = re.compile(rb"Listening on TCP address [\d.]+:(\d+)")

# A second admin of acme (two admins of one tenant in two browsers) and a tenant admin made
# through the services, like every other row.
EXTRA_USERS = f"""
from accounts.models import User
from accounts.services import user_create
from tenants.models import Tenant
if not User.objects.filter(username="acme-admin2").exists():
    user_create(username="acme-admin2", password={PASSWORD!r}, role="tenant_admin",
                tenant=Tenant.objects.get(slug="acme"), first_name="Second", last_name="Admin",
                by=None)
"""


class LiveServer:
    """`manage.py migrate` + `seed_demo` into a temp DB, then daphne; restartable on its port."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pages-live-"))
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": f"sqlite:///{self.tmp / 'db.sqlite3'}",
            "DEBUG": "1",  # static files from the finders, as with `make run`
            "PYTHONUNBUFFERED": "1",
        }
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = self.tmp / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout + result.stderr

    def prepare(self) -> None:
        self.manage("migrate", "--noinput")
        # seed_demo and the extra user in one process (each start of Django costs seconds).
        self.manage(
            "shell",
            "-c",
            f"from django.core.management import call_command\n"
            f"call_command('seed_demo', password={PASSWORD!r})\n{EXTRA_USERS}",
        )

    def start(self) -> None:
        """Start daphne: on a free port the first time (port 0), then on the same port."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        offset = self.log_path.stat().st_size if self.port else 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log_path.read_text()[-3000:]}")
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                found = LISTENING.search(f.read())
            if found:
                self.port = int(found.group(1))
                return
            time.sleep(0.05)
        raise RuntimeError(f"daphne did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        for _ in range(100):  # the port may linger for a moment after the old process
            try:
                self.start()
                return
            except RuntimeError:
                time.sleep(0.1)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def sign_in(page: Any, server: LiveServer, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the real form; waits until the page's socket is connected."""
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    wait_connected(page)
    return page


def wait_for(page: Any, expression: str, *, arg: Any = None, timeout: float = 10_000) -> Any:
    """Like page.wait_for_function, under the pages' Content-Security-Policy.

    Playwright's wait_for_function polls by `eval` inside the page, which the CSP (no
    'unsafe-eval') refuses; page.evaluate is run by the DevTools protocol, which it allows.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout:.0f} ms: {expression}")
        time.sleep(0.05)


def wait_connected(page: Any, timeout: float = 10_000) -> None:
    wait_for(page, "window.notifications && window.notifications.isConnected()", timeout=timeout)
