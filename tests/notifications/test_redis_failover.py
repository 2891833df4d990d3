"""Redis in production: a dead subscription, a restart, TLS and a Sentinel failover, each against
real redis-server processes started here, with sockets on a real server process (uvicorn).

Each disruption hits in the middle of a burst of events committed through the services (so the
real outbox and publishers carry them: this process's publisher, which sends straight to Redis,
and the server's publisher); afterwards every event must reach every socket, /ws/notifications/
and Pusher alike. The layer of the server tells its consumers when it resubscribed after a gap,
and they re-check their rights, replay from the store and re-sync presence
(notifications/realtime/gap.py).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings as django_settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from notifications.events import relay as publisher
from notifications.models import StoredEvent
from notifications.realtime.connections import config_problems, host_spec
from notifications.realtime.groups import tenant_scope
from notifications.realtime.presence import RedisPresenceStore
from notifications.realtime.pusher.consumer import RESYNC_DONE
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


def broadcasting_auth(server: Uvicorn, token: str, socket_id: str, channel: str) -> dict:
    """POST the server's /broadcasting/auth as Echo's authorizer does (bearer token)."""
    body = urllib.parse.urlencode({"socket_id": socket_id, "channel_name": channel}).encode()
    request = urllib.request.Request(
        f"{server.http}/broadcasting/auth",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our server)
        return json.loads(response.read())


class PusherSocket:
    """A pusher-js-like client of the server's /app/<key>: its event ids, presence members
    (from subscription_succeeded, member_added and member_removed) and close code."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids: list[int] = []
        self.members: dict[str, set[str]] = {}
        self.member_events: list[tuple[str, str]] = []  # ("added" / "removed", user id)
        self.closed: int | None = None
        self.task: asyncio.Task | None = None

    @classmethod
    async def open(cls, server: Uvicorn, user, channels: list[str]) -> PusherSocket:
        key = django_settings.PUSHER_APP_KEY
        ws = await connect(f"ws://127.0.0.1:{server.port}/app/{key}?protocol=7&client=js")
        frame = await recv_json(ws, 10)
        assert frame["event"] == "pusher:connection_established", frame
        socket_id = json.loads(frame["data"])["socket_id"]
        token = await jwt_for(user)
        self = cls(ws)
        for channel in channels:
            auth = await asyncio.to_thread(broadcasting_auth, server, token, socket_id, channel)
            await ws.send(
                json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, **auth}})
            )
            while (frame := await recv_json(ws, 10))["event"] != (
                "pusher_internal:subscription_succeeded"
            ):
                self._take(frame)
            data = json.loads(frame["data"])
            if "presence" in data:
                self.members[channel] = set(data["presence"]["ids"])
        self.task = asyncio.create_task(self._read())
        return self

    def _take(self, frame: dict) -> None:
        event = frame["event"]
        assert event != "hotspot:resync", "the server gave up replaying"
        if event == "pusher_internal:member_added":
            self.members[frame["channel"]].add(json.loads(frame["data"])["user_id"])
            self.member_events.append(("added", json.loads(frame["data"])["user_id"]))
        elif event == "pusher_internal:member_removed":
            self.members[frame["channel"]].discard(json.loads(frame["data"])["user_id"])
            self.member_events.append(("removed", json.loads(frame["data"])["user_id"]))
        elif not event.startswith("pusher"):
            self.ids.append(int(json.loads(frame["data"])["id"]))

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self._take(json.loads(text))
        except ConnectionClosed:
            pass
        self.closed = self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        if self.task is not None:
            self.task.cancel()


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


async def every_event_arrives(sockets: list, timeout: float = 90) -> set[int]:
    """Every stored event at every socket (/ws/notifications/ or Pusher), each once at the
    Pusher ones (their replay is deduplicated on the server)."""
    stored = set(await run(lambda: list(StoredEvent.objects.values_list("id", flat=True)))())
    assert len(stored) >= BURST + 1  # the warm-up event and the burst

    def complete() -> bool:
        return all(stored <= set(s.ids) for s in sockets)

    try:
        await until(complete, timeout, "every event at every socket")
    except TimeoutError:
        missing = [sorted(stored - set(s.ids)) for s in sockets]
        raise AssertionError(f"events never reached the sockets: {missing}") from None
    for s in sockets:
        if isinstance(s, PusherSocket):
            twice = sorted({i for i in s.ids if s.ids.count(i) > 1})
            assert not twice, f"events sent twice to a Pusher socket: {twice}"
    return stored


async def scenario(
    server: Uvicorn,
    tenant,
    tenant_admin,
    disrupt: Callable[[], None],
    recover: Callable[[], None] | None = None,
) -> None:
    """Sockets (two /ws/notifications/, one Pusher on private-tenant.<id>), a warm-up event
    (subscriptions are live), the burst with its disruption, and then every event at every
    socket."""
    sockets: list = await open_sockets(server, tenant_admin)
    sockets.append(await PusherSocket.open(server, tenant_admin, [f"private-tenant.{tenant.pk}"]))
    publisher.ensure_started()  # this process publishes too, straight to Redis
    try:
        tenant = await update(tenant, "Acme")
        await until(lambda: all(s.ids for s in sockets), 30, "the warm-up event")
        await burst(tenant, disrupt, recover)
        await every_event_arrives(sockets)
    finally:
        await publisher.stop()
        for s in sockets:
            if isinstance(s, PusherSocket):
                await s.close()
                continue
            await s.ws.close()
            s.task.cancel()


def logged(server: Uvicorn, text: str) -> bool:
    return text in server.output()


# -- a dead subscription, a paused server, a restart -------------------------------------------


def kill_subscriptions(server: Uvicorn, own_redis: RedisServer, proxy: TcpProxy) -> None:
    """CLIENT KILL TYPE pubsub: the subscription connections are cut by Redis."""
    proxy.refuse()
    admin = own_redis.client()
    try:
        assert admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    finally:
        admin.close()


def pause(server: Uvicorn, own_redis: RedisServer, proxy: TcpProxy) -> None:
    """CLIENT PAUSE longer than twice the health check: the connection stays open but answers
    nothing, as behind a NAT that dropped the flow or a hung managed Redis."""
    proxy.refuse()
    admin = own_redis.client()
    try:
        seconds = float(HEALTH_CHECK_SECONDS) * 2 + 2
        admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
        wait_until(lambda: logged(server, "no answer to PING"), 30, "the health check")
        admin.ping()  # answered once the pause is over
    finally:
        admin.close()


def restart(server: Uvicorn, own_redis: RedisServer, proxy: TcpProxy) -> None:
    """The Redis server restarts (nothing kept: no persistence)."""
    proxy.refuse()
    own_redis.stop()
    own_redis.start()


@pytest.mark.parametrize(
    "disruption", [kill_subscriptions, pause, restart], ids=lambda f: f.__name__
)
async def test_a_lost_subscription_mid_burst_loses_no_event(
    disruption, settings, own_redis, proxy, prefix, tenant, tenant_admin
):
    """The server's subscription dies mid-burst (killed, found dead by the health check, or
    the server restarted) while GAP events go out: its sockets get every event after."""
    use_layer(settings, {"address": own_redis.url}, prefix)
    server = start_server(prefix, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
    try:
        await scenario(
            server, tenant, tenant_admin, lambda: disruption(server, own_redis, proxy), proxy.start
        )
        assert logged(server, "resubscribed to Redis")
    finally:
        server.stop()


# -- rights and presence lost in a gap --------------------------------------------------------


async def test_after_a_gap_revoked_sockets_close_and_presence_is_re_synced(
    settings, own_redis, proxy, prefix, tenant, tenant_admin, staff
):
    """While server A is cut off from Redis, a staff member is suspended (the close message is
    lost to A) and people come and go on server B (their presence news is lost to A). Once A
    has resubscribed: the staff's sockets close at once (the periodic re-check is an hour
    away), the admin's Pusher presence channel gets the member_removed / member_added it
    missed, and the admin's /ws/notifications/ presence list is sent again."""
    from accounts.services import user_suspend
    from tests.factories import TenantStaffFactory

    leaver, comer = await run(
        lambda: [TenantStaffFactory(tenant=tenant, username=f"p{i}") for i in (1, 2)]
    )()
    use_layer(settings, {"address": own_redis.url}, prefix)
    a = start_server(
        prefix,
        REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
        NOTIFICATIONS_WS_RECHECK_SECONDS="3600",
    )
    b = start_server(prefix, REDIS_URL=own_redis.url)
    scope = tenant_scope(tenant.pk)
    store = RedisPresenceStore({"address": own_redis.url}, settings.NOTIFICATIONS_PRESENCE_PREFIX)

    def online() -> set[int]:
        return {m["id"] for m in store.members(scope)}

    sockets = []
    try:
        leaving = await open_sockets(b, leaver, count=1)
        sockets += leaving
        await until(lambda: leaver.pk in online(), 30, "the leaver online")
        presence = f"presence-tenant.{tenant.pk}"
        watcher = await PusherSocket.open(a, tenant_admin, [presence])
        sockets.append(watcher)
        assert str(leaver.pk) in watcher.members[presence]
        (admin_ws,) = await open_sockets(a, tenant_admin, count=1)
        sockets.append(admin_ws)
        lists: list[set[int]] = []
        admin_ws.task.cancel()  # read its presence lists here instead
        await admin_ws.ws.send(json.dumps({"action": "presence", "channel": f"tenant.{tenant.pk}"}))
        staff_pusher = await PusherSocket.open(a, staff, [f"private-tenant.{tenant.pk}"])
        (staff_ws,) = await open_sockets(a, staff, count=1)
        sockets += [staff_pusher, staff_ws]
        staff_ws.task.cancel()

        async def read_lists() -> None:
            async for text in admin_ws.ws:
                frame = json.loads(text)
                if frame["type"] == "presence":
                    lists.append({m["id"] for m in frame["members"]})

        reader = asyncio.create_task(read_lists())
        await until(lambda: lists, 30, "the admin's first presence list")

        proxy.stop()  # A's connections to Redis are cut (subscription and all)
        await until(lambda: logged(a, "lost the Redis subscription"), 30, "A to notice")
        await leaving[0].ws.close()
        await open_sockets(b, comer, count=1)
        await until(
            lambda: leaver.pk not in online() and comer.pk in online(), 30, "B's presence news"
        )
        await run(user_suspend)(user=staff, by=tenant_admin, reason="gap")
        seen_lists = len(lists)
        proxy.start()

        await until(lambda: logged(a, "resubscribed to Redis"), 60, "A to resubscribe")
        await until(lambda: staff_pusher.closed is not None, 30, "the staff's Pusher socket closed")
        assert staff_pusher.closed == 4009
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(30):
                while True:
                    await staff_ws.ws.recv()
        members = watcher.members[presence]
        await until(
            lambda: str(comer.pk) in members and str(leaver.pk) not in members,
            30,
            "the Pusher presence channel re-synced",
        )
        await until(
            lambda: any(comer.pk in m and leaver.pk not in m for m in lists[seen_lists:]),
            30,
            "the /ws/notifications/ presence list sent again",
        )
        reader.cancel()
    finally:
        for s in sockets:
            if isinstance(s, PusherSocket):
                await s.close()
            else:
                await s.ws.close()
                s.task.cancel()
        a.stop()
        b.stop()


async def test_a_redis_restart_makes_no_present_member_blink(
    settings, own_redis, prefix, tenant, tenant_admin, staff
):
    """Redis restarts (every presence entry is lost) while an admin and a staff member stay
    connected. Once the server has resubscribed, the admin's presence channel is told of
    nobody leaving or coming back: it used to get member_removed for the staff at once and
    member_added one heartbeat later. A newcomer after the re-sync's wait is still announced."""
    from tests.factories import TenantStaffFactory

    ttl = 20.0
    comer = await run(lambda: TenantStaffFactory(tenant=tenant, username="comer"))()
    use_layer(settings, {"address": own_redis.url}, prefix)
    server = start_server(  # (debug: each socket's re-sync logs when it is over)
        prefix, REDIS_URL=own_redis.url, NOTIFICATIONS_PRESENCE_TTL=str(ttl), LOG_LEVEL="DEBUG"
    )
    store = RedisPresenceStore({"address": own_redis.url}, settings.NOTIFICATIONS_PRESENCE_PREFIX)
    scope, presence = tenant_scope(tenant.pk), f"presence-tenant.{tenant.pk}"

    def online() -> set[int]:
        return {m["id"] for m in store.members(scope)}

    sockets = []
    try:
        watcher = await PusherSocket.open(server, tenant_admin, [presence])
        sockets.append(watcher)
        sockets.append(await PusherSocket.open(server, staff, [presence]))
        await until(lambda: str(staff.pk) in watcher.members[presence], 30, "the staff seen")
        seen = len(watcher.member_events)
        own_redis.stop(kill=True)
        own_redis.start()  # empty: no persistence
        await until(lambda: logged(server, "resubscribed to Redis"), 60, "the resubscribe")
        await until(lambda: {tenant_admin.pk, staff.pk} <= online(), 30, "both back in Redis")
        # Both sockets' re-syncs over, their wait for missing members (rejoin_wait) included:
        # a blink would have been sent by now.
        await until(lambda: server.output().count(RESYNC_DONE) >= 2, 60, "the re-syncs")
        sockets.append(await PusherSocket.open(server, comer, [presence]))
        await until(lambda: str(comer.pk) in watcher.members[presence], 30, "the newcomer")
        assert watcher.member_events[seen:] == [("added", str(comer.pk))]
    finally:
        for s in sockets:
            await s.close()
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


async def test_the_layer_reaches_tls_sentinels_and_a_tls_master(
    settings, tmp_path, prefix, tenant, tenant_admin
):
    """REDIS_SENTINEL_TLS: the sentinel serves TLS only (its tls-port), as does the master;
    the server and this process find the master through it and events flow."""
    require_program("redis-server")
    require_program("openssl")
    files = make_tls_files(tmp_path / "tls")
    master = RedisServer(tmp_path / "master", tls=files).start()
    sentinel = RedisServer(tmp_path / "sentinel", tls=files, sentinel_of=master).start()
    values = {
        "REDIS_URL": "rediss://mymaster/0",
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}",
        "REDIS_SENTINEL_MASTER": "mymaster",
        "REDIS_SENTINEL_TLS": "true",
        "REDIS_TLS_CA_CERTS": str(files.ca),
    }
    assert config_problems(values) == []
    use_layer(settings, host_spec(values), prefix)
    server = start_server(prefix, **values)
    try:
        assert master_port(sentinel) == master.port  # over TLS
        (socket,) = await open_sockets(server, tenant_admin, count=1)
        for i in range(5):
            tenant = await update(tenant, f"S{i}")
        stored = set(await run(lambda: list(StoredEvent.objects.values_list("id", flat=True)))())
        await until(lambda: stored <= set(socket.ids), 30, "every event via TLS sentinels")
        await socket.ws.close()
        socket.task.cancel()
    finally:
        server.stop()
        # the sentinel speaks TLS only: a plain connection gets nowhere
        plain = redis.Redis(port=sentinel.port, socket_timeout=3, socket_connect_timeout=3)
        with pytest.raises(redis.RedisError):
            plain.ping()
        plain.close()
        sentinel.stop()
        master.stop()
