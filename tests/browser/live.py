"""The seeded demo site on a real daphne (tests/liveserver.py) + Debian's chromium via Playwright.

Shared by the browser tests (tests/browser/conftest.py) and docs/screenshots/take.py, so the
screenshots show exactly what the tests drive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.liveserver import Daphne

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "Browser-Test-pw-42"

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
        self.server: Daphne | None = None

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
        """Start daphne: on a free port the first time, then on the same port."""
        self.server = Daphne(self.env, port=self.port or None)
        self.server.wait_ready()
        self.port = self.server.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.process.poll() is None

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
