"""Browser fixtures: one live daphne (temp SQLite + seed_demo) and one chromium for tests/browser/.

Without /usr/bin/chromium the browser tests skip with the reason on a laptop, and fail in CI.
"""

from __future__ import annotations

import os

import pytest

from tests.browser.live import CHROMIUM, LiveServer, launch_browser, sign_in
from tests.conftest import IN_CI


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: browser tests must not skip")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="package")
def live_server_proc(chromium_path):
    server = LiveServer()
    server.prepare()
    server.start()
    yield server
    server.close()


@pytest.fixture
def server(live_server_proc):
    """The live server, (re)started if an earlier test left it stopped."""
    if not live_server_proc.running:
        live_server_proc.start()
    return live_server_proc


@pytest.fixture(scope="package")
def browser(chromium_path):
    """Package-scoped: Playwright's sync API keeps an event loop running in the main thread
    while it is open, which would break every asyncio test collected after tests/browser/."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, server):
    """new_page(username=None, width=1280) → a page in its own browser context (own cookies).

    Every page logs its socket frames (debugNotifications) into `page.frames_seen`, and any
    JavaScript dialog (an XSS that ran) into `page.dialogs`.
    """
    contexts = []

    def make(username: str | None = None, *, width: int = 1280, height: int = 800):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_init_script("window.localStorage.setItem('debugNotifications', '1');")
        contexts.append(context)
        page = context.new_page()
        page.frames_seen = []
        page.dialogs = []
        page.on("console", lambda msg: page.frames_seen.append(msg.text))
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        if username:
            sign_in(page, server, username)
        return page

    yield make
    for context in contexts:
        context.close()
