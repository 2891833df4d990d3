"""RADIUS fixtures: one real FreeRADIUS per test session, asking the test's live server."""

from __future__ import annotations

import secrets
import time

import pytest
from django.conf import settings

from hotspot import radius, radius_cache
from tests.conftest import require_program
from tests.hotspot.radius_harness import FreeRadius, Nas, next_address


@pytest.fixture(scope="session")
def freeradius(live_server, django_db_blocker):
    program = require_program("freeradius")
    server = FreeRadius(api_url=live_server.url, program=program)
    with django_db_blocker.unblock():
        server.start()
    # this process (and its live server thread) drops cached answers through that listener
    saved = settings.RADIUS_CACHE_SERVERS
    settings.RADIUS_CACHE_SERVERS = [f"127.0.0.1:{server.cache_port}"]
    yield server
    settings.RADIUS_CACHE_SERVERS = saved
    server.stop()


@pytest.fixture
def nas(freeradius, transactional_db):
    """nas(router) → a client sending from that router's address with its secret."""
    radius.forget_seen()
    # a flushed test database reuses ids: no answer cached by an earlier test may serve this one.
    # On a loaded machine an earlier drop can miss its timeouts: the sender then marks the server
    # as not answering and stops waiting for it (send() is False at once) until it confirms
    # again, which the drop sent anyway soon makes it do. Ask again until one is confirmed.
    deadline = time.monotonic() + 60
    while not radius_cache.send(generation=secrets.token_hex(8), wait=10):
        assert time.monotonic() < deadline, freeradius.log()
        time.sleep(0.2)

    def make(router, secret: str | None = None) -> Nas:
        return Nas(freeradius, router.address, secret or router.secret)

    return make


@pytest.fixture
def new_address():
    return next_address


@pytest.fixture
async def deliver():
    """Publish the stored events (the in-memory layer's path; see tests/notifications)."""
    from notifications.events import relay as publisher

    async def _deliver() -> int:
        return await publisher.publish_pending()

    return _deliver
