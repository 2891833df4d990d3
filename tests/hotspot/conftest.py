"""RADIUS fixtures: one real FreeRADIUS per test session, asking the test's live server."""

from __future__ import annotations

import pytest

from hotspot import radius
from tests.conftest import require_program
from tests.hotspot.radius_harness import FreeRadius, Nas, next_address


@pytest.fixture(scope="session")
def freeradius(live_server, django_db_blocker):
    program = require_program("freeradius")
    server = FreeRadius(api_url=live_server.url, program=program)
    with django_db_blocker.unblock():
        server.start()
    yield server
    server.stop()


@pytest.fixture
def nas(freeradius, transactional_db):
    """nas(router) → a client sending from that router's address with its secret."""
    radius.forget_seen()

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
