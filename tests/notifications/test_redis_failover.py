"""Redis in production: a dead subscription, a restart, TLS and a Sentinel failover, each against
real redis-server processes started here, with sockets on a real server process (uvicorn).

Each disruption hits in the middle of a burst of events committed through the services (so the
real outbox and publishers carry them: this process's publisher, which sends straight to Redis,
and the server's publisher); afterwards every event must reach every socket. The layer of the
server tells its consumers when it resubscribed after a gap, and they replay from the store.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from websockets.asyncio.client import connect

from notifications.events import relay as publisher
from notifications.models import StoredEvent
from notifications.realtime.groups import tenant_scope
from notifications.realtime.presence import RedisPresenceStore
from tenants import services as tenants
from tests.conftest import require_program
from tests.liveserver import (
    RedisServer,
    TcpProxy,
    Uvicorn,
    jwt_for,
    make_tls_files,
    recv_json,
    server_env,
    wait_until,
)
from tests.notifications.conftest import run
from tests.notifications.wsutil import committed_db

pytestmark = [pytest.mark.redis, pytest.mark.live, committed_db]

BURST = 40
DISRUPT_AFTER = 12
GAP = 4  # events published while the server cannot be subscribed
#: the servers' subscription health check (a dead one is found within twice this)
HEALTH_CHECK_SECONDS = "1"


@pytest.fixture
def prefix() -> str:
    return f"failover-{uuid.uuid4().hex[:8]}"


def use_layer(settings, host: dict, prefix: str) -> None:
    """This process (where the services commit and its publisher sends) on the same Redis."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "notifications.realtime.layers.FanoutChannelLayer",
            "CONFIG": {"hosts": [host], "prefix": prefix},
        }
    }
    settings.NOTIFICATIONS_SEND_TIMEOUT_SECONDS = 1.0


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    require_program("redis-server")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def proxy(own_redis) -> Iterator[TcpProxy]:
    """The server's way to the Redis (this process connects directly): refuse() holds the
    server's reconnection back while events go out, so a gap is certain, not a race."""
    relay = TcpProxy(("127.0.0.1", own_redis.port))
    relay.start()
    yield relay
    relay.stop()


def start_server(prefix: str, **redis: str) -> Uvicorn:
    env = server_env(
        redis_url=redis.pop("REDIS_URL", None),
        prefix=prefix,
        REDIS_HEALTH_CHECK_SECONDS=HEALTH_CHECK_SECONDS,
        NOTIFICATIONS_RETRY_MAX_SECONDS="0.5",
        **redis,
    )
    (server,) = Uvicorn.start(env)
    return server


class Socket:
    """A tenant admin's /ws/notifications/ socket whose event ids are collected as they come."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids: list[int] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            assert frame["type"] != "resync", "the server gave up replaying"
            if frame["type"] == "event":
                self.ids.append(int(frame["id"]))


async def open_sockets(server: Uvicorn, user, count: int = 2) -> list[Socket]:
    sockets = []
    for _ in range(count):
        ws = await connect(f"{server.ws}?token={await jwt_for(user)}")
        assert (await recv_json(ws, 10))["type"] == "welcome"
        sockets.append(Socket(ws))
    return sockets


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.1)
    assert condition(), what


async def update(tenant, name: str):
    """One committed tenant change: a TenantUpdated event for the tenant's admins."""
    return await run(tenants.tenant_update)(tenant=tenant, data={"name": name}, by=None)


async def burst(tenant, disrupt: Callable[[], None], recover: Callable[[], None] | None) -> None:
    """BURST tenant updates (each its own committed event); after a few, `disrupt`; with a
    `recover`, then GAP events that certainly reach Redis while the server is not subscribed,
    then `recover`."""
    for i in range(BURST - GAP if recover else BURST):
        tenant = await update(tenant, f"Acme {i}")
        if i + 1 == DISRUPT_AFTER:
            await asyncio.to_thread(disrupt)
            if recover is not None:
                tenant = await published_while_away(tenant)
                await asyncio.to_thread(recover)
        await asyncio.sleep(0.02)  # a burst, not one transaction


async def published_while_away(tenant):
    """GAP events published to Redis (by the emitting request here) while the server cannot
    be subscribed: without a replay the server's sockets never see them."""
    out = 0
    for i in range(GAP * 5):
        tenant = await update(tenant, f"Away {i}")
        row = await run(lambda: StoredEvent.objects.order_by("-id").first())()
        # went out (through this process's publisher) while the server was away, unless the
        # server's publisher claimed it first: then it waits in the store for the server's
        # subscription to be back
        out += await published_soon(row.id)
        if out == GAP:
            return tenant
    raise AssertionError(f"only {out} events went out while the server was away")


async def published_soon(event_id: int, timeout: float = 10) -> bool:
    """True once the event is settled as published; False if it is not within `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        published = await run(
            lambda: StoredEvent.objects.filter(id=event_id, published_at__isnull=False).exists()
        )()
        if published:
            return True
        await asyncio.sleep(0.1)
    return False


async def every_event_arrives(sockets: list[Socket], timeout: float = 90) -> set[int]:
    stored = set(await run(lambda: list(StoredEvent.objects.values_list("id", flat=True)))())
    assert len(stored) >= BURST + 1  # the warm-up event and the burst

    def complete() -> bool:
        return all(stored <= set(s.ids) for s in sockets)

    try:
        await until(complete, timeout, "every event at every socket")
    except TimeoutError:
        missing = [sorted(stored - set(s.ids)) for s in sockets]
        raise AssertionError(f"events never reached the sockets: {missing}") from None
    return stored


async def scenario(
    server: Uvicorn,
    tenant,
    tenant_admin,
    disrupt: Callable[[], None],
    recover: Callable[[], None] | None = None,
) -> None:
    """Sockets, a warm-up event (subscriptions are live), the burst with its disruption, and
    then every event at every socket."""
    sockets = await open_sockets(server, tenant_admin)
    publisher.ensure_started()  # this process publishes too, straight to Redis
    try:
        tenant = await update(tenant, "Acme")
        await until(lambda: all(s.ids for s in sockets), 30, "the warm-up event")
        await burst(tenant, disrupt, recover)
        await every_event_arrives(sockets)
    finally:
        await publisher.stop()
        for s in sockets:
            await s.ws.close()
            s.task.cancel()


def logged(server: Uvicorn, text: str) -> bool:
    return text in server.output()


# -- a dead subscription, a paused server, a restart -------------------------------------------


async def test_killed_subscription_connections_lose_no_event(
    settings, own_redis, proxy, prefix, tenant, tenant_admin
):
    use_layer(settings, {"address": own_redis.url}, prefix)
    server = start_server(prefix, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
    admin = own_redis.client()
    try:

        def kill_subscriptions() -> None:
            proxy.refuse()
            assert admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1

        await scenario(server, tenant, tenant_admin, kill_subscriptions, proxy.start)
        assert logged(server, "resubscribed to Redis")
    finally:
        admin.close()
        server.stop()


async def test_a_paused_redis_is_found_dead_by_the_health_check_and_no_event_is_lost(
    settings, own_redis, proxy, prefix, tenant, tenant_admin
):
    use_layer(settings, {"address": own_redis.url}, prefix)
    server = start_server(prefix, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
    admin = own_redis.client()
    try:

        def pause() -> None:
            # Longer than twice the health check: the connection stays open but answers
            # nothing, as behind a NAT that dropped the flow or a hung managed Redis.
            proxy.refuse()
            seconds = float(HEALTH_CHECK_SECONDS) * 2 + 2
            admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
            wait_until(lambda: logged(server, "no answer to PING"), 30, "the health check")
            admin.ping()  # answered once the pause is over

        await scenario(server, tenant, tenant_admin, pause, proxy.start)
        assert logged(server, "resubscribed to Redis")
    finally:
        admin.close()
        server.stop()


async def test_a_redis_restart_mid_burst_loses_no_event(
    settings, own_redis, proxy, prefix, tenant, tenant_admin
):
    use_layer(settings, {"address": own_redis.url}, prefix)
    server = start_server(prefix, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
    try:

        def restart() -> None:
            proxy.refuse()
            own_redis.stop()
            own_redis.start()

        await scenario(server, tenant, tenant_admin, restart, proxy.start)
        assert logged(server, "resubscribed to Redis")
    finally:
        server.stop()


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def tls_redis(tmp_path) -> Iterator[RedisServer]:
    require_program("redis-server")
    require_program("openssl")
    files = make_tls_files(tmp_path / "tls")
    server = RedisServer(tmp_path / "redis-tls", tls=files)
    server.start()
    yield server
    server.stop()


async def test_layer_and_presence_work_over_tls(settings, tls_redis, prefix, tenant, tenant_admin):
    ca = str(tls_redis.tls.ca)
    host = {"address": tls_redis.url, "ssl_ca_certs": ca}
    assert tls_redis.url.startswith("rediss://")
    use_layer(settings, host, prefix)
    server = start_server(prefix, REDIS_URL=tls_redis.url, REDIS_TLS_CA_CERTS=ca)
    store = RedisPresenceStore(host, settings.NOTIFICATIONS_PRESENCE_PREFIX)
    try:
        sockets = await open_sockets(server, tenant_admin, count=1)
        # presence: the server's store (over TLS) has the admin online in the tenant
        await until(
            lambda: [m["id"] for m in store.members(tenant_scope(tenant.pk))] == [tenant_admin.pk],
            30,
            "the socket's presence entry",
        )
        # events: published here over TLS, received by the server over TLS
        for i in range(5):
            tenant = await run(tenants.tenant_update)(
                tenant=tenant, data={"name": f"T{i}"}, by=None
            )
        stored = set(await run(lambda: list(StoredEvent.objects.values_list("id", flat=True)))())
        await until(lambda: stored <= set(sockets[0].ids), 30, "every event over TLS")
        await sockets[0].ws.close()
    finally:
        server.stop()
    # and the server speaks TLS only: a plain connection gets nowhere
    plain = redis.Redis(port=tls_redis.port, socket_timeout=3, socket_connect_timeout=3)
    with pytest.raises(redis.RedisError):
        plain.ping()
    plain.close()


# -- Sentinel ----------------------------------------------------------------------------------


@pytest.fixture
def sentinel_set(tmp_path) -> Iterator[tuple[RedisServer, RedisServer, RedisServer]]:
    """A master, its replica and one Sentinel (quorum 1), each on a port of its own."""
    require_program("redis-server")
    master = RedisServer(tmp_path / "master").start()
    replica = RedisServer(tmp_path / "replica", replica_of=master).start()
    sentinel = RedisServer(tmp_path / "sentinel", sentinel_of=master).start()
    client = sentinel.client()
    try:
        wait_until(
            lambda: client.execute_command("SENTINEL", "REPLICAS", "mymaster"),
            60,
            "the sentinel to know the replica",
        )
        replica_client = replica.client()
        wait_until(
            lambda: replica_client.info("replication").get("master_link_status") == "up",
            60,
            "the replica to sync",
        )
        replica_client.close()
        yield master, replica, sentinel
    finally:
        client.close()
        for server in (sentinel, replica, master):
            server.stop()


def master_port(sentinel: RedisServer) -> int:
    client = sentinel.client()
    try:
        return int(client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")[1])
    finally:
        client.close()


async def test_the_layer_follows_a_sentinel_failover_and_no_event_is_lost(
    settings, sentinel_set, prefix, tenant, tenant_admin
):
    master, replica, sentinel = sentinel_set
    sentinels = f"127.0.0.1:{sentinel.port}"
    use_layer(
        settings, {"master_name": "mymaster", "sentinels": [("127.0.0.1", sentinel.port)]}, prefix
    )
    server = start_server(prefix, REDIS_SENTINELS=sentinels, REDIS_SENTINEL_MASTER="mymaster")
    try:
        assert master_port(sentinel) == master.port

        def kill_master() -> None:
            master.stop(kill=True)

        await scenario(server, tenant, tenant_admin, kill_master)
        assert master_port(sentinel) == replica.port  # it was a failover
        assert logged(server, "resubscribed to Redis")
    finally:
        server.stop()
