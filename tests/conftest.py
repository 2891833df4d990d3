"""Shared fixtures: factories, real-server guards (Redis/PostgreSQL), demo-shaped tenants."""

from __future__ import annotations

import os
import socket
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.conf import settings

from tests.factories import (
    PackageFactory,
    SystemAdminFactory,
    TenantAdminFactory,
    TenantFactory,
    TenantStaffFactory,
)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/15"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def require_server(url: str, default_port: int, what: str) -> None:
    """Skip on a laptop without the server; fail in CI, where it must be there."""
    if _reachable(url, default_port):
        return
    message = f"{what} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: tests of {what} behaviour must not skip)")
    pytest.skip(f"{message}; start it to run this test")


def require_program(name: str) -> str:
    """The path of an installed program; skip on a laptop without it, fail in CI."""
    import shutil

    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: tests that need it must not skip)")
    pytest.skip(message)


def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(config, items):
    """`postgres` tests run in the PostgreSQL pass (DATABASE_URL); deselected on SQLite."""
    if is_postgres():
        return
    kept, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("postgres") else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _presence_isolated():
    """Each test starts with nobody online (ids are reused between tests on SQLite)."""
    yield
    from notifications.realtime import presence

    if presence._store is not None:
        presence._store.clear()


def clear_counters() -> None:
    """Forget sign-in counters and throttle counts (the cache outlives a test's transaction)."""
    from django.core.cache import cache, caches

    backend = caches["default"]
    if type(backend).__name__ == "LocMemCache":
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    for pattern in ("signin:*", "throttle_*", "radius_cache:*"):
        keys = list(client.scan_iter(match=cache.make_key(pattern)))
        if keys:
            client.delete(*keys)


@pytest.fixture(autouse=True)
def _counters_isolated():
    """Each test starts with no sign-in failures or throttle counts of an earlier one."""
    clear_counters()
    yield


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis for tests of Redis behaviour (REDIS_URL, else the local default)."""
    url = os.environ.get("REDIS_URL") or DEFAULT_TEST_REDIS
    require_server(url, 6379, "Redis")
    return url


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own (tests/liveserver.py), which it may stop and restart:
    Redis really going away, never the shared server."""
    from tests.liveserver import RedisServer

    require_program("redis-server")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def tenant(db):
    return TenantFactory(name="Acme WiFi", slug="acme")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(name="Beta Net", slug="beta")


@pytest.fixture
def system_admin(db):
    return SystemAdminFactory(username="root-admin")


@pytest.fixture
def tenant_admin(tenant):
    return TenantAdminFactory(tenant=tenant, username="acme-admin")


@pytest.fixture
def staff(tenant):
    return TenantStaffFactory(tenant=tenant, username="acme-staff")


@pytest.fixture
def other_admin(other_tenant):
    return TenantAdminFactory(tenant=other_tenant, username="beta-admin")


@pytest.fixture
def package(tenant):
    return PackageFactory(tenant=tenant)


@pytest.fixture
def two_tenants(system_admin, tenant_admin, staff, other_admin):
    """Tenant A (acme: tenant_admin, staff), tenant B (beta: other_admin) and a system admin."""


@pytest.fixture
def package_a(tenant):
    """Tenant A's package "Daily" at 50.00 (the API tests' record of tenant A)."""
    return PackageFactory(tenant=tenant, name="Daily", price=Decimal("50.00"))


@pytest.fixture
def package_b(other_tenant):
    """Tenant B's package "Weekly" at 300.00."""
    return PackageFactory(tenant=other_tenant, name="Weekly", price=Decimal("300.00"))


@pytest.fixture
def signal_log():
    """Every domain signal (accounts, tenants, hotspot, payments) sent during the test.

    A list of (signal name, kwargs) in the order sent; lets tests assert "one event, with
    these details" and "nothing was sent" for refused changes.
    """
    from django.dispatch import Signal

    from accounts import signals as accounts_signals
    from hotspot import signals as hotspot_signals
    from payments import signals as payments_signals
    from tenants import signals as tenants_signals

    log: list[tuple[str, dict]] = []
    connected = []
    for module in (accounts_signals, tenants_signals, hotspot_signals, payments_signals):
        for name, signal in vars(module).items():
            if not isinstance(signal, Signal):
                continue

            def handler(sender, _name=name, **kwargs):
                kwargs.pop("signal", None)
                log.append((_name, kwargs))

            signal.connect(handler, weak=False)
            connected.append((signal, handler))
    yield log
    for signal, handler in connected:
        signal.disconnect(handler)


@pytest.fixture
def sysadmin_client(system_admin):
    """A browser signed in to the admin as a system admin, with CSRF checks on."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(system_admin)
    return client


# --- API (tests/*/test_api*.py) ------------------------------------------------------------------
API_ROLES = ("system_admin", "tenant_admin", "staff", "other_admin", "anonymous")


def bearer(user) -> str:
    """An `Authorization` header value with a fresh JWT access token for `user`."""
    from rest_framework_simplejwt.tokens import RefreshToken

    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_as(request, db):
    """api_as("tenant_admin") → an APIClient carrying that role fixture's JWT ('anonymous': none).

    Roles are the shared fixtures above: system_admin, tenant_admin / staff (tenant A, "acme"),
    other_admin (tenant B, "beta").
    """
    from rest_framework.test import APIClient

    def make(role: str):
        client = APIClient()
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=bearer(request.getfixturevalue(role)))
        return client

    return make


@pytest.fixture
async def fresh_layer():
    """A new channel layer per test (each test has its own event loop).

    Also stops this loop's publisher and presence tracker, and closes the database connection
    of the thread that runs database_sync_to_async, so PostgreSQL can drop the test database.
    """
    from channels.db import database_sync_to_async
    from channels.layers import channel_layers
    from django.db import connections

    from config import metrics
    from notifications.events import relay
    from notifications.realtime import presence

    channel_layers.backends.clear()
    yield
    await relay.stop()  # started by the first connection, on this test's loop
    await metrics.sampler.stop()  # (started with it)
    await presence.stop_trackers()
    channel_layers.backends.clear()
    await database_sync_to_async(connections.close_all)()
