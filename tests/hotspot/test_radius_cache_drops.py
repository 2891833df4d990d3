"""Which changes drop which cached answers, and when (hotspot/radius_cache.py), seen by a
listener standing in for FreeRADIUS's cache control server; the real one is in
test_radius_cache.py."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time

import pytest
from django.db import transaction
from prometheus_client import REGISTRY

from hotspot import radius, radius_cache, services
from hotspot.models import MB, HotspotUser, Router
from tenants import services as tenant_services
from tests.factories import HotspotUserFactory, PackageFactory, RouterFactory, TenantFactory
from tests.hotspot.radius_harness import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


class CacheStandIn:
    """Records each drop packet's keys / generation and confirms it as FreeRADIUS does; with
    `answering` cleared it reads every packet and ignores it (a wedged or firewalled listener)."""

    def __init__(self) -> None:
        self.secret = radius_cache.cache_secret().encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # room for a full window of drop packets (256 x 4 kB) while this thread catches up
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.keys: list[str] = []
        self.generations: list[str] = []
        self.packets: list[list[str]] = []  # the keys of each confirmed packet
        self.ignored = 0
        self.answering = True
        self.stop = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.answering:
                self.ignored += 1
                continue
            at, keys = 20, []
            while at < len(data):
                kind, length = data[at], data[at + 1]
                if kind == 26 and struct.unpack("!I", data[at + 2 : at + 6])[0] == 65400:
                    vtype, value = data[at + 6], data[at + 8 : at + length].decode()
                    (keys if vtype == 1 else self.generations).append(value)
                at += length
            self.keys.extend(keys)
            self.packets.append(keys)
            header = bytes([2, data[1]]) + struct.pack("!H", 20)
            auth = hashlib.md5(header + data[4:20] + self.secret).digest()  # noqa: S324
            self.sock.sendto(header + auth, peer)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def standin(settings):
    listener = CacheStandIn()
    settings.RADIUS_CACHE_SERVERS = [f"127.0.0.1:{listener.port}"]
    settings.RADIUS_CACHE_TTL = 30
    yield listener
    listener.close()


@pytest.fixture
def world():
    tenant = TenantFactory()
    routers = [RouterFactory(tenant=tenant) for _ in range(2)]
    user = HotspotUserFactory(
        package=PackageFactory(tenant=tenant, data_limit_mb=10), username="dee"
    )
    return {"tenant": tenant, "routers": routers, "user": user}


def keys_of(world, name="dee"):
    return sorted(f"{r.pk}:{name}" for r in world["routers"])


def test_user_changes_drop_its_keys_on_every_router_after_commit(standin, world):
    with transaction.atomic():
        services.hotspot_user_disable(hotspot_user=world["user"], by=None)
        assert standin.keys == []  # not before the commit
    assert sorted(standin.keys) == keys_of(world)  # and done when the call returns
    assert standin.generations == []


def test_a_rolled_back_change_drops_nothing(standin, world):
    with pytest.raises(RuntimeError), transaction.atomic():
        user = world["user"]
        user.password = "other"
        user.save()
        raise RuntimeError
    assert standin.keys == []  # a drop is confirmed before the commit's callbacks return


def test_rename_drops_the_old_name_too(standin, world):
    user = world["user"]
    user.username = "dora"
    user.save()
    assert sorted(standin.keys) == sorted(keys_of(world) + keys_of(world, "dora"))


def test_tenant_package_router_changes_switch_generation(standin, world):
    tenant_services.tenant_suspend(tenant=world["tenant"], reason="unpaid", by=None)
    services.package_update(package=world["user"].package, data={"speed_limit": "1M/1M"}, by=None)
    services.router_update(router=world["routers"][0], data={"name": "renamed"}, by=None)
    services.router_delete(router=world["routers"][1], by=None)
    assert len(set(standin.generations)) == 4
    assert standin.keys == []


def test_what_changes_no_answer_drops_nothing(standin, world):
    RouterFactory(tenant=world["tenant"])  # a new router: nothing cached for it
    HotspotUserFactory(package=world["user"].package, username="new")  # a new user
    free = HotspotUserFactory(package=PackageFactory(tenant=world["tenant"], data_limit_mb=None))
    session_router = world["routers"][0]
    radius.account(
        router_id=session_router.pk,
        data={
            "Acct-Status-Type": "Interim-Update",
            "Acct-Session-Id": "x",
            "User-Name": free.username,
            "Acct-Output-Octets": str(5 * MB),
        },
    )  # fmt: skip  (data used without a limit is in no answer)
    assert standin.keys == [] and standin.generations == []


def test_accounting_collects_the_keys_for_its_answer(standin, world):
    router = world["routers"][0]
    with radius_cache.collect() as keys:
        radius.account(router_id=router.pk, data={
            "Acct-Status-Type": "Interim-Update", "Acct-Session-Id": "y", "User-Name": "dee",
            "Acct-Output-Octets": str(1 * MB),
        })  # fmt: skip
    assert sorted(keys) == keys_of(world)
    # and sent off the request thread as well (should the accounting answer be lost)
    wait_for(lambda: sorted(standin.keys) == keys_of(world), 30, "the background drop")


def test_no_freeradius_listening_does_not_hold_a_change_up(settings, world):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.RADIUS_CACHE_SERVERS = [f"127.0.0.1:{port}"]  # nothing listens there now
    settings.RADIUS_CACHE_TTL, settings.RADIUS_CACHE_TIMEOUT = 30, 5.0
    started = time.monotonic()
    services.hotspot_user_disable(hotspot_user=world["user"], by=None)
    assert time.monotonic() - started < 10  # waiting out the timeouts would take 15 s


def drops(result: str) -> float:
    return REGISTRY.get_sample_value("hotspot_radius_cache_drops_total", {"result": result}) or 0


def test_a_users_keys_go_in_one_packet(standin, world):
    services.hotspot_user_disable(hotspot_user=world["user"], by=None)
    wait_for(lambda: standin.packets, 10, "the drop to arrive")
    assert [sorted(keys) for keys in standin.packets] == [keys_of(world)]


def test_a_silent_listener_costs_the_change_only_the_wait_and_gets_the_drop_later(
    standin, world, settings, caplog
):
    """A listener that reads and never answers: the service returns within
    RADIUS_CACHE_DROP_WAIT; the sender keeps trying, and once the listener answers again the
    drop is delivered, the failure logged and counted."""
    settings.RADIUS_CACHE_DROP_WAIT = 0.2
    # the old blocking exchange would have held the disable up for these: 6 s
    settings.RADIUS_CACHE_TIMEOUT, settings.RADIUS_CACHE_RETRIES = 2.0, 3
    standin.answering = False
    unanswered, late = drops("unanswered"), drops("late")
    started = time.monotonic()
    services.hotspot_user_disable(hotspot_user=world["user"], by=None)
    took = time.monotonic() - started
    # the wait, with room for a busy machine's transaction; far from the old 6 s
    assert took < 0.2 + 2.5, f"the disable waited {took:.2f}s for a silent cache listener"
    assert standin.keys == [] and standin.ignored >= 1
    wait_for(lambda: drops("unanswered") > unanswered, 10, "the sender to give up a try")
    assert "did not confirm" in caplog.text
    standin.answering = True
    wait_for(lambda: sorted(standin.keys) == keys_of(world), 15, "the drop delivered late")
    wait_for(lambda: drops("late") >= late + 1, 5, "the late drop counted")


def test_one_commit_waits_once_for_all_its_drops(standin, world, settings):
    """A sweep changing many users in one transaction shares one wait, not one each."""
    settings.RADIUS_CACHE_DROP_WAIT = 0.5
    users = [world["user"]] + [
        HotspotUserFactory(package=world["user"].package, username=f"u{i}") for i in range(5)
    ]
    standin.answering = False
    started = time.monotonic()
    with transaction.atomic():
        for user in users:
            HotspotUser.objects.get(pk=user.pk).save()  # an admin-style edit of each
    took = time.monotonic() - started
    assert took < 0.5 + 1.5, f"six drops in one commit waited {took:.2f}s"  # not 6 x 0.5 = 3 s
    standin.answering = True
    wait_for(lambda: len(set(standin.keys)) == 2 * len(users), 15, "every drop delivered")


def test_generations_reach_a_server_in_order_even_after_an_outage(standin, settings):
    """Two generations queued while the listener is silent: it ends on the newer one (an older
    one arriving last would bring back the entries cached under it)."""
    settings.RADIUS_CACHE_TIMEOUT, settings.RADIUS_CACHE_RETRIES = 0.2, 1
    standin.answering = False
    assert not radius_cache.send(generation="old-one", wait=0.05)
    assert not radius_cache.send(generation="new-one", wait=0.05)
    standin.answering = True
    wait_for(lambda: "new-one" in standin.generations, 15, "the newer generation")
    assert standin.generations[-1] == "new-one", standin.generations


def thread_cpu_seconds(thread: threading.Thread) -> float:
    """User + system CPU time one thread has used (Linux /proc)."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def many_keys(n: int = 30000) -> list[str]:
    """More keys than 256 packets hold (~80 of these per packet): the identifiers run out."""
    return [f"{i}:a-fairly-long-hotspot-username-{i:06d}" for i in range(n)]


def test_a_backlog_beyond_the_identifiers_does_not_spin_the_sender(standin, settings):
    """All 256 identifiers out to a silent listener: the sender sleeps until an answer or a
    retransmission is due instead of trying to send the rest in a loop."""
    settings.RADIUS_CACHE_TIMEOUT, settings.RADIUS_CACHE_RETRIES = 5.0, 3
    standin.answering = False
    radius_cache.send(keys=many_keys(), wait=0)
    wait_for(lambda: standin.ignored >= 256, 15, "the first 256 packets")
    # against a thread that does spin, in the same window (a loaded machine gives both less)
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])
    spinner.start()
    sender = radius_cache._sender.thread
    try:
        cpu, reference = thread_cpu_seconds(sender), thread_cpu_seconds(spinner)
        wait_for(lambda: thread_cpu_seconds(spinner) - reference >= 0.3, 30, "the spinner's CPU")
        used = thread_cpu_seconds(sender) - cpu
        spun = thread_cpu_seconds(spinner) - reference
    finally:
        stop.set()
        spinner.join()
    assert used < 0.25 * spun, f"the sender used {used:.2f}s of CPU, a spinner {spun:.2f}s"


def test_a_drop_bigger_than_the_identifiers_is_confirmed_once(standin, settings):
    """More packets than identifiers: the rest go as answers free identifiers; every key is
    sent once and the drop finishes once, confirmed (it used to be sent forever)."""
    settings.RADIUS_CACHE_TIMEOUT = 5.0  # a busy stand-in never causes a retransmission
    keys = many_keys()
    finished = drops("confirmed") + drops("late")
    assert radius_cache.send(keys=keys, wait=30)
    assert drops("confirmed") + drops("late") == finished + 1
    assert len(standin.keys) == len(keys) and set(standin.keys) == set(keys)


def test_a_failed_batch_is_not_retransmitted_and_each_drop_finishes_once(standin, settings):
    """A batch given up after its tries sends none of its packets again until its drops go,
    together, in a new batch after the back-off; once answered each drop finishes once."""
    settings.RADIUS_CACHE_TIMEOUT, settings.RADIUS_CACHE_RETRIES = 0.3, 2
    standin.answering = False
    unanswered, finished = drops("unanswered"), drops("confirmed") + drops("late")
    radius_cache.send(keys=many_keys(), wait=0)  # a batch waiting for identifiers
    radius_cache.send(keys=["1:late-comer"], wait=0)  # and one waiting behind it
    wait_for(lambda: drops("unanswered") > unanswered, 15, "the batch to be given up")
    # tries x the 256 packets out: nothing more went while the batch was failing
    assert standin.ignored <= 2 * 256, standin.ignored
    standin.answering = True
    wait_for(lambda: drops("confirmed") + drops("late") >= finished + 2, 30, "both drops")
    time.sleep(0.5)
    assert drops("confirmed") + drops("late") == finished + 2


def test_a_full_queue_discards_new_drops_with_a_warning(standin, settings, caplog):
    """A listener that never answers: at RADIUS_CACHE_QUEUE_MAX drops pending for it, new
    ones are discarded (logged once, counted) instead of piling up in memory."""
    settings.RADIUS_CACHE_QUEUE_MAX = 5
    standin.answering = False
    discarded = drops("discarded")
    for i in range(12):
        radius_cache.send(keys=[f"1:user-{i}"], wait=0)
    wait_for(lambda: drops("discarded") == discarded + 7, 10, "7 drops discarded")
    assert caplog.text.count("RADIUS_CACHE_QUEUE_MAX") == 1


def test_changes_do_not_wait_for_a_listener_that_stopped_answering(standin, world, settings):
    """Once a packet went unanswered for RADIUS_CACHE_TIMEOUT the listener is unhealthy: a
    change waits no longer for it (its drop still goes), until it answers again."""
    settings.RADIUS_CACHE_DROP_WAIT = 30  # what a change would wait for a silent listener
    settings.RADIUS_CACHE_TIMEOUT, settings.RADIUS_CACHE_RETRIES = 0.2, 3
    standin.answering = False
    user = world["user"]
    started = time.monotonic()
    user.password = "one"
    user.save()  # waits only until its packet's timeout marks the listener unhealthy
    user.password = "two"
    user.save()  # does not wait at all
    took = time.monotonic() - started
    assert took < settings.RADIUS_CACHE_DROP_WAIT / 3, f"two saves took {took:.1f}s"
    assert standin.ignored >= 2  # both sent all the same
    standin.answering = True
    wait_for(lambda: sorted(set(standin.keys)) == keys_of(world), 15, "the drops delivered")
    user.username = "dora"
    user.save()  # healthy again: waits for the confirmation
    assert set(keys_of(world, "dora")) <= set(standin.keys)


def test_a_users_save_asks_no_query_for_its_routers(
    standin, world, django_assert_num_queries, settings, tmp_path
):
    """The tenant's router ids come from the shared cache; a router added anywhere is in the
    next drop."""
    settings.CACHES = {  # shared by every process, as Redis is in production
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    user = HotspotUser.objects.get(pk=world["user"].pk)
    user.save()  # the router ids are cached now
    with django_assert_num_queries(1):  # the UPDATE alone
        user.save()
    added = RouterFactory(tenant=world["tenant"])  # (in any process: the cache is shared)
    user.password = "new"
    user.save()
    assert f"{added.pk}:dee" in standin.keys
    Router.objects.filter(pk=added.pk).delete()
    before = len(standin.keys)
    user.password = "newer"
    user.save()
    assert sorted(standin.keys[before:]) == keys_of(world)  # not the removed one's key


def test_with_a_per_process_cache_a_save_reads_its_routers(
    standin, world, django_assert_num_queries, settings
):
    """Each process's own memory cannot hear of another process's router change: no caching."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    user = HotspotUser.objects.get(pk=world["user"].pk)
    user.save()
    with django_assert_num_queries(2):  # the routers, then the UPDATE
        user.save()


def test_a_forked_child_closes_the_parents_sender_sockets(standin):
    """The parent's sender sockets are of no use in a child (its thread did not follow): they
    are closed, not leaked into every worker."""
    assert radius_cache.send(keys=["1:forker"], wait=5)
    sender = radius_cache._sender
    fds = [sender._wake_r.fileno(), sender._wake_w.fileno()] + [
        peer.sock.fileno() for peer in getattr(sender, "peers", {}).values()
    ]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report which of the parent's descriptors are still open
        still_open = []
        for fd in fds:
            try:
                os.fstat(fd)
                still_open.append(fd)
            except OSError:
                pass
        os.write(write, repr(still_open).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as report:
        assert report.read() == "[]", f"open in the child of {fds}"
