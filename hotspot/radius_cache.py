"""Dropping FreeRADIUS's cached answers the moment the platform changes one.

FreeRADIUS keeps each Access-Accept's answer in memory (rlm_cache, hotspot/freeradius.py),
keyed on "generation:router-id:User-Name". Whatever changes an answer drops it, after its
transaction commits:

- a hotspot user saved or deleted (status, password, expiry, package, data used against a
  limit): its keys on every router of its tenant (``Hotspot-Drop-Key``);
- a tenant, package or router saved or deleted: a new generation (every answer at once; rare).

Each process has one sender thread (:class:`Sender`) that sends drops to the
``platform_cache_control`` listener of each FreeRADIUS in RADIUS_CACHE_SERVERS (Access-Requests,
as many keys per packet as fit), retransmits, and keeps retrying a drop nobody confirmed until
the entries it names have lapsed on their own. The committing thread only hands its drop over
and waits for the confirmation at most RADIUS_CACHE_DROP_WAIT for all the drops of one commit
together: on a healthy loopback the confirmation comes in a millisecond or two, so the very next
login is refused; a listener that does not answer costs the request that bound and no more
(the drop is delivered later, logged and counted, hotspot_radius_cache_drops_total), and once
a packet to it went unanswered for RADIUS_CACHE_TIMEOUT no change waits for it until it
answers. A thread, not the notifications publisher's loop: domain apps never import
notifications, and a shell or a management command has no publisher but must drop too.

From inside an accounting call (FreeRADIUS is waiting on us, so a packet back to it could wait
for a thread it holds) the keys ride on the accounting answer instead (:func:`collect`), and go
to the sender as well without waiting, should that answer be lost.

Django's model signals, not the hotspot services' signals: an answer changes whenever the row
does, and Django admin, the shell, data migrations and other apps' code save rows without
calling a hotspot service. A service-level signal would leave those edits' stale answers in
FreeRADIUS for a TTL.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import hashlib
import hmac
import itertools
import logging
import os
import queue
import secrets
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save

from config.metrics import observe_radius_cache_drop

from .freeradius import RadiusConfig

log = logging.getLogger(__name__)

#: hotspot/freeradius.py VENDOR_ID and its attributes
VENDOR_ID = 65400
DROP_KEY, GENERATION = 1, 2
MESSAGE_AUTHENTICATOR = 80
MAX_PACKET = 4000
#: a save of only these fields changes an answer only when the package has a data limit
USAGE_FIELDS = frozenset({"data_used_bytes", "data_used_mb", "updated_at"})
#: how long FreeRADIUS holds a dropped key (radius_config's default HTTP timeout)
HOLD_SECONDS = RadiusConfig(api_url="", token="").hold_ttl

_collecting: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "radius_cache_collecting", default=None
)


def enabled() -> bool:
    return settings.RADIUS_CACHE_TTL > 0 and bool(settings.RADIUS_CACHE_SERVERS)


def cache_secret(token: str | None = None) -> str:
    """The control listener's shared secret, derived from RADIUS_API_TOKEN (one secret less to
    configure, never the token itself)."""
    token = settings.RADIUS_API_TOKEN if token is None else token
    return hmac.new(token.encode(), b"radius-cache-control", hashlib.sha256).hexdigest()[:32]


# --- the packets --------------------------------------------------------------------------------


def _vsa(kind: int, value: str) -> bytes:
    data = value.encode()[:240]
    inner = bytes([kind, 2 + len(data)]) + data
    return bytes([26, 6 + len(inner)]) + struct.pack("!I", VENDOR_ID) + inner


def build_request(ident: int, attributes: bytes, secret: bytes) -> tuple[bytes, bytes]:
    """An Access-Request carrying `attributes`, signed with a Message-Authenticator."""
    authenticator = secrets.token_bytes(16)
    body = attributes + bytes([MESSAGE_AUTHENTICATOR, 18]) + b"\0" * 16
    header = struct.pack("!BBH", 1, ident, 20 + len(body))
    mac = hmac.new(secret, header + authenticator + body, hashlib.md5).digest()
    return header + authenticator + body[:-16] + mac, authenticator


def reply_ok(reply: bytes, ident: int, authenticator: bytes, secret: bytes) -> bool:
    """An Access-Accept to our request, signed by a FreeRADIUS that knows the secret."""
    if len(reply) < 20 or reply[1] != ident or reply[0] != 2:
        return False
    expected = hashlib.md5(reply[:4] + authenticator + reply[20:] + secret).digest()  # noqa: S324
    return hmac.compare_digest(expected, reply[4:20])


def _packets(keys: list[str], generation: str | None) -> Iterator[bytes]:
    chunk = _vsa(GENERATION, generation) if generation else b""
    for key in keys:
        attr = _vsa(DROP_KEY, key)
        if len(chunk) + len(attr) > MAX_PACKET - 40:
            yield chunk
            chunk = b""
        chunk += attr
    if chunk:
        yield chunk


def _address(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def send(
    *, keys: Iterable[str] = (), generation: str | None = None, wait: float | None = None
) -> bool:
    """Drop `keys` (and switch to `generation`) on every FreeRADIUS, waiting at most `wait`
    seconds (RADIUS_CACHE_DROP_WAIT); True when every server confirmed (or has no cache)."""
    keys = list(dict.fromkeys(keys))
    if not enabled() or not (keys or generation):
        return True
    drop = _sender.put(keys, generation)
    return drop.wait(settings.RADIUS_CACHE_DROP_WAIT if wait is None else wait)


class Drop:
    """One change's keys / generation on its way to every server of RADIUS_CACHE_SERVERS."""

    _numbers = itertools.count()

    def __init__(
        self,
        keys: list[str],
        generation: str | None,
        servers: tuple[str, ...],
        unwaited: Iterable[str] = (),
    ) -> None:
        self.keys, self.generation = keys, generation
        self.number = next(self._numbers)  # generations reach a server in this order
        self.queued = time.monotonic()
        self.left = set(servers)  # servers that have not finished it yet
        # servers not answering when it was handed over: sent to, but nobody waits for them
        self.unwaited = self.left & set(unwaited)
        self.done = threading.Event()  # every server finished it
        self.waited = threading.Event()  # every server worth waiting for finished it
        if not self.left - self.unwaited:
            self.waited.set()
        self.abandoned = False  # its caller stopped waiting: a later confirmation is "late"

    def wait(self, seconds: float) -> bool:
        """True when every server has finished it (a server not answering is not waited for)."""
        self.waited.wait(max(0.0, seconds))
        if not self.done.is_set():
            self.abandoned = True
        return self.done.is_set()

    def skip(self, server: str) -> None:
        """`server` stopped answering: whoever waits for this drop stops waiting for it."""
        if server in self.left:
            self.unwaited.add(server)
            if not self.left - self.unwaited:
                self.waited.set()

    def finish(self, server: str, result: str) -> None:
        if server not in self.left:
            return
        self.left.discard(server)
        if result == "confirmed" and self.abandoned:
            result = "late"
        observe_radius_cache_drop(result)
        if not self.left - self.unwaited:
            self.waited.set()
        if not self.left:
            self.done.set()


class _Batch:
    """The drops flushed to one server at once; confirmed when all its packets are."""

    def __init__(self, drops: list[Drop]) -> None:
        self.drops = drops
        self.packets: list[_Packet] = []
        self.outstanding = 0  # packets not confirmed yet
        self.failed = False


class _Packet:
    def __init__(self, attributes: bytes, batch: _Batch, generation: bool) -> None:
        self.attributes, self.batch = attributes, batch
        self.generation = generation  # carries the batch's generation (its first packet)
        self.ident, self.data, self.authenticator = -1, b"", b""  # given when it goes out
        self.tries, self.sent_at = 0, 0.0


#: a RADIUS Identifier is one byte: at most this many packets in flight to one server
IDENTS = 256


class _Peer:
    """One cache listener: its socket, the packets in flight or waiting for an identifier, the
    drops waiting to be sent."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.connected = False
        self.inflight: dict[int, _Packet] = {}
        self.unsent: collections.deque[_Packet] = collections.deque()  # no identifier free
        self.waiting: list[Drop] = []
        self.pending = 0  # drops this server has not finished (waiting or in a batch)
        self.overflowing = False  # discarding drops (RADIUS_CACHE_QUEUE_MAX); logged once
        self.retry_at = 0.0
        self.failures = 0  # batches in a row nobody confirmed (0: healthy)
        self.generation_number = -1  # of the newest generation this server confirmed
        self.next_ident = secrets.randbelow(IDENTS)

    def generation_out(self) -> bool:
        return any(p.generation for p in itertools.chain(self.inflight.values(), self.unsent))

    def sendable(self) -> bool:
        """Something waits that may go now: not while a batch still waits for identifiers (it
        goes first; what waits joins the next one), and a generation waits for the one out."""
        if self.unsent or not self.waiting:
            return False
        held = self.generation_out()
        return any(not (drop.generation and held) for drop in self.waiting)

    def ident(self) -> int | None:
        if len(self.inflight) >= IDENTS:
            return None
        while True:
            ident, self.next_ident = self.next_ident, (self.next_ident + 1) % IDENTS
            if ident not in self.inflight:
                return ident

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Sender:
    """This process's drops to FreeRADIUS, off the committing threads: one daemon thread.

    Started on first use (and again in a forked child, whose parent's thread did not follow).
    Drops queued while a batch waits for identifiers go together in the next one; a server
    that does not answer gets each packet RADIUS_CACHE_RETRIES times RADIUS_CACHE_TIMEOUT
    apart, then the batch waits (backing off up to BACKOFF_MAX) and is sent again, until
    RADIUS_CACHE_TTL + the hold have passed since the change: by then no entry it names can be
    stale. A server whose packet went unanswered for RADIUS_CACHE_TIMEOUT is *unhealthy*:
    drops are still sent to it, but no commit waits for it, until it answers again.
    """

    BACKOFF_MAX = 5.0

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Drop] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self.peers: dict[str, _Peer] = {}  # the thread's (closed in a forked child)
        # servers not answering; replaced whole by the thread (read by committing threads)
        self.unhealthy: frozenset[str] = frozenset()

    def put(self, keys: list[str], generation: str | None = None) -> Drop:
        drop = Drop(keys, generation, tuple(settings.RADIUS_CACHE_SERVERS), self.unhealthy)
        if not drop.left:
            drop.done.set()
            return drop
        self._ensure_started()
        self.queue.put(drop)
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            self._wake_w.send(b"\0")  # type: ignore[union-attr]
        return drop

    def forked(self) -> None:
        """In a forked child: the parent's thread did not follow, its locks may be held; its
        sockets are closed here (the child starts its own)."""
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        for peer in list(self.peers.values()):
            peer.close()
        self._wake_r = self._wake_w = None
        self.peers = {}
        self.unhealthy = frozenset()
        self.lock = threading.Lock()
        self.queue = queue.SimpleQueue()
        self.thread, self.pid = None, 0

    def _ensure_started(self) -> None:
        if self.pid == os.getpid() and self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.pid == os.getpid() and self.thread is not None and self.thread.is_alive():
                return
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self.pid = os.getpid()
            self.peers = {}
            self.thread = threading.Thread(
                target=self.run, args=(self._wake_r, self.peers), name="radius-cache", daemon=True
            )
            self.thread.start()

    def run(self, wake: socket.socket, peers: dict[str, _Peer]) -> None:
        selector = selectors.DefaultSelector()
        selector.register(wake, selectors.EVENT_READ)
        while True:
            try:
                self._step(peers, selector, wake)
            except Exception:
                log.exception("The RADIUS cache sender failed; going on")
                time.sleep(0.1)

    def _step(self, peers: dict[str, _Peer], selector: selectors.BaseSelector, wake) -> None:  # noqa: ANN001
        for key, _ in selector.select(self._timeout(peers)):
            if key.fileobj is wake:
                with contextlib.suppress(OSError):
                    while wake.recv(4096):
                        pass
            else:
                self._receive(key.data)
        limit = settings.RADIUS_CACHE_QUEUE_MAX
        while True:
            try:
                drop = self.queue.get_nowait()
            except queue.Empty:
                break
            for server in drop.left.copy():
                if server not in peers:
                    peers[server] = _Peer(server)
                    selector.register(peers[server].sock, selectors.EVENT_READ, peers[server])
                self._accept(peers[server], drop, limit)
        now = time.monotonic()
        for peer in peers.values():
            self._expire_retransmit(peer, now)
            self._pump(peer, now)
            if now >= peer.retry_at and peer.sendable():
                self._flush(peer, now)

    def _accept(self, peer: _Peer, drop: Drop, limit: int) -> None:
        """Queue `drop` for `peer`, unless RADIUS_CACHE_QUEUE_MAX drops already wait for it."""
        if peer.server in self.unhealthy:  # marked since the drop was put: nobody waits for it
            drop.skip(peer.server)
        if peer.pending >= limit:
            if not peer.overflowing:
                peer.overflowing = True
                log.warning(
                    "FreeRADIUS cache at %s has %d drops pending (RADIUS_CACHE_QUEUE_MAX); "
                    "discarding new ones until it confirms again (their entries lapse within "
                    "RADIUS_CACHE_TTL)", peer.server, peer.pending,
                )  # fmt: skip
            drop.finish(peer.server, "discarded")
            return
        peer.overflowing = False
        peer.pending += 1
        peer.waiting.append(drop)

    def _finish(self, peer: _Peer, drop: Drop, result: str) -> None:
        if peer.server in drop.left:
            peer.pending -= 1
            drop.finish(peer.server, result)

    def _timeout(self, peers: dict[str, _Peer]) -> float | None:
        """Until the next retransmission or retry; never 0 for what cannot go (no identifier
        free: an answer wakes the selector)."""
        due = [
            packet.sent_at + settings.RADIUS_CACHE_TIMEOUT
            for peer in peers.values()
            for packet in peer.inflight.values()
        ] + [peer.retry_at for peer in peers.values() if peer.sendable()]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _flush(self, peer: _Peer, now: float) -> None:
        """Send what waits as one batch: every key once, the newest generation (one generation
        packet out at a time, so a server never goes back to an older one). One pass."""
        give_up = settings.RADIUS_CACHE_TTL + HOLD_SECONDS
        held = peer.generation_out()
        keep: list[Drop] = []
        drops: list[Drop] = []
        expired: list[Drop] = []
        for drop in peer.waiting:
            if now - drop.queued > give_up:
                expired.append(drop)
            elif drop.generation and held:
                keep.append(drop)
            else:
                drops.append(drop)
        peer.waiting = keep
        if expired:  # one line for a backlog, not one per drop
            log.error(
                "FreeRADIUS cache at %s never confirmed %d drop(s) (%d key(s)); their entries "
                "have lapsed by now (RADIUS_CACHE_TTL)",
                peer.server, len(expired), sum(len(d.keys) for d in expired),
            )  # fmt: skip
            for drop in expired:
                self._finish(peer, drop, "expired")
        if not drops:
            return
        newest = max((d for d in drops if d.generation), key=lambda d: d.number, default=None)
        generation = None
        if newest is not None and newest.number > peer.generation_number:
            generation = newest.generation
        keys = list(dict.fromkeys(k for d in drops for k in d.keys))
        if not keys and generation is None:  # only generations already overtaken
            for drop in drops:
                self._finish(peer, drop, "confirmed")
            return
        batch = _Batch(drops)
        first = True
        for attributes in _packets(keys, generation):
            packet = _Packet(attributes, batch, generation=first and generation is not None)
            first = False
            batch.packets.append(packet)
            peer.unsent.append(packet)
        batch.outstanding = len(batch.packets)
        self._pump(peer, now)

    def _pump(self, peer: _Peer, now: float) -> None:
        """Send the packets waiting for an identifier, as many as are free."""
        if not peer.unsent:
            return
        secret = cache_secret().encode()
        while peer.unsent:
            ident = peer.ident()
            if ident is None:  # IDENTS packets out: an answer frees one
                return
            packet = peer.unsent.popleft()
            packet.ident = ident
            packet.data, packet.authenticator = build_request(ident, packet.attributes, secret)
            peer.inflight[ident] = packet
            if not self._transmit(peer, packet, now):
                return

    def _transmit(self, peer: _Peer, packet: _Packet, now: float) -> bool:
        packet.tries += 1
        packet.sent_at = now
        try:
            if not peer.connected:
                peer.sock.connect(_address(peer.server))
                peer.connected = True
            peer.sock.send(packet.data)
        except ConnectionRefusedError:
            self._refused(peer)
            return False
        except OSError as exc:  # no route, full buffer: as if lost, retransmitted on time
            log.debug("Sending a drop to %s failed: %s", peer.server, exc)
        return True

    def _receive(self, peer: _Peer) -> None:
        secret = cache_secret().encode()
        while True:
            try:
                reply = peer.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:  # ICMP port unreachable
                self._refused(peer)
                return
            except OSError:
                return
            packet = peer.inflight.get(reply[1]) if len(reply) > 1 else None
            if packet is None or not reply_ok(reply, packet.ident, packet.authenticator, secret):
                continue
            del peer.inflight[packet.ident]
            if peer.failures:
                log.warning("FreeRADIUS cache at %s confirms drops again", peer.server)
            if peer.server in self.unhealthy:
                log.info("FreeRADIUS cache at %s answers again; changes wait for it", peer.server)
                self.unhealthy = self.unhealthy - {peer.server}
            peer.failures, peer.retry_at = 0, 0.0
            batch = packet.batch
            batch.outstanding -= 1
            if batch.failed or batch.outstanding:
                continue
            for drop in batch.drops:
                if drop.generation and drop.number > peer.generation_number:
                    peer.generation_number = drop.number
                self._finish(peer, drop, "confirmed")

    def _expire_retransmit(self, peer: _Peer, now: float) -> None:
        timeout, tries = settings.RADIUS_CACHE_TIMEOUT, max(1, settings.RADIUS_CACHE_RETRIES)
        for packet in list(peer.inflight.values()):
            if packet.batch.failed or now - packet.sent_at < timeout:
                continue  # (failed: taken out with its batch earlier in this pass)
            if peer.server not in self.unhealthy:
                self._unhealthy(peer)
            if packet.tries < tries:
                if not self._transmit(peer, packet, now):
                    return
                continue
            self._fail(peer, packet.batch, now, tries)

    def _unhealthy(self, peer: _Peer) -> None:
        """A packet went unanswered for RADIUS_CACHE_TIMEOUT: no change waits for this server
        (its drops still go) until it answers again."""
        log.info("FreeRADIUS cache at %s does not answer; changes do not wait for it", peer.server)
        self.unhealthy = self.unhealthy | {peer.server}
        packets = itertools.chain(peer.inflight.values(), peer.unsent)
        for batch in {id(p.batch): p.batch for p in packets}.values():
            for drop in batch.drops:
                drop.skip(peer.server)
        for drop in peer.waiting:
            drop.skip(peer.server)

    def _fail(self, peer: _Peer, batch: _Batch, now: float, tries: int) -> None:
        """A packet of `batch` went unanswered every try: none of its packets is sent again;
        its drops wait (backing off) and go in a new batch."""
        batch.failed = True
        for packet in batch.packets:
            if peer.inflight.get(packet.ident) is packet:
                del peer.inflight[packet.ident]
        if any(packet.batch is batch for packet in peer.unsent):
            peer.unsent = collections.deque(p for p in peer.unsent if p.batch is not batch)
        peer.failures += 1
        backoff = settings.RADIUS_CACHE_TIMEOUT * 2**peer.failures
        peer.retry_at = now + min(self.BACKOFF_MAX, backoff)
        again = [d for d in batch.drops if peer.server in d.left]
        log.warning(
            "FreeRADIUS cache at %s did not confirm %d drop(s) after %d tries; sending "
            "again in %.1f s (until then it may answer from the old entries)",
            peer.server, len(again), tries, peer.retry_at - now,
        )  # fmt: skip
        for _ in again:
            observe_radius_cache_drop("unanswered")
        peer.waiting[:0] = again

    def _refused(self, peer: _Peer) -> None:
        """Nothing listens there (no FreeRADIUS, e.g. `make run` without one): no cache to drop
        from; a FreeRADIUS that starts later starts empty."""
        log.info("No FreeRADIUS cache listens at %s", peer.server)
        packets = itertools.chain(peer.inflight.values(), peer.unsent)
        batches = {id(p.batch): p.batch for p in packets}
        peer.inflight.clear()
        peer.unsent.clear()
        drops = [d for b in batches.values() for d in b.drops] + peer.waiting
        peer.waiting = []
        for batch in batches.values():
            batch.failed = True
        for drop in drops:
            self._finish(peer, drop, "refused")
        peer.failures, peer.retry_at = 0, 0.0
        self.unhealthy = self.unhealthy - {peer.server}


_sender = Sender()
os.register_at_fork(after_in_child=_sender.forked)


# --- what changes an answer ---------------------------------------------------------------------


@contextlib.contextmanager
def collect() -> Iterator[list[str]]:
    """Within: keys to drop are gathered (after commit) into the yielded list, not sent."""
    keys: list[str] = []
    token = _collecting.set(keys)
    try:
        yield keys
    finally:
        _collecting.reset(token)


#: changes whenever any router is saved or deleted: a tenant's cached router ids name it
ROUTERS_VERSION = "radius_cache:routers"
#: how long a tenant's router ids stay in the cache unread (a lost version bump lasts no longer)
ROUTERS_CACHE_SECONDS = 300


def tenant_routers(tenant_id: int) -> list[int]:
    """The tenant's router ids, from the shared cache while no router changed: a hotspot user's
    save asks no query. The version is read before the query, so a list read before a router
    change is stored under the old version and never used after it."""
    from django.core.cache import cache

    from .models import Router

    if not _cache_is_shared():  # another process's router change would not reach this one
        return list(Router.objects.filter(tenant_id=tenant_id).values_list("pk", flat=True))
    key = f"{ROUTERS_VERSION}:{tenant_id}"
    try:
        found = cache.get_many([ROUTERS_VERSION, key])
        version = found.get(ROUTERS_VERSION)
        if version is None:
            cache.add(ROUTERS_VERSION, secrets.token_hex(8), None)
            version = cache.get(ROUTERS_VERSION)
    except Exception:  # the cache's Redis down: the query still answers
        log.warning("Router ids not cached for the RADIUS cache drops", exc_info=True)
        found, version = {}, None
    cached = found.get(key)
    if version is not None and cached is not None and cached[0] == version:
        return list(cached[1])
    routers = list(Router.objects.filter(tenant_id=tenant_id).values_list("pk", flat=True))
    if version is not None:
        with contextlib.suppress(Exception):
            cache.set(key, (version, routers), ROUTERS_CACHE_SECONDS)
    return routers


def _cache_is_shared() -> bool:
    """Whether the default cache is one for every process (Redis, a database or files), not each
    process's own memory, in which a version bump reaches one process only."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    return not backend.endswith((".LocMemCache", ".DummyCache"))


def _routers_changed() -> None:
    from django.core.cache import cache

    try:
        cache.set(ROUTERS_VERSION, secrets.token_hex(8), None)
    except Exception:
        log.warning("Could not mark the cached router ids stale", exc_info=True)


def _router_changed(sender, instance, **kwargs) -> None:  # noqa: ANN001
    # now (a rolled-back test or transaction never commits) and after the commit (a list read
    # meanwhile, before the commit, is of the old routers)
    _routers_changed()
    transaction.on_commit(_routers_changed)


def user_keys(tenant_id: int, usernames: Iterable[str]) -> list[str]:
    routers = tenant_routers(tenant_id)
    return [f"{router}:{name}" for name in dict.fromkeys(usernames) for router in routers]


def drop_users(*, tenant_id: int, usernames: Iterable[str]) -> None:
    """After commit: forget these users' answers on every router of the tenant."""
    if not enabled():
        return
    # looked up now, inside the transaction: nothing but the drop itself runs after the commit
    # (a router added meanwhile has nothing cached; one removed changes the generation)
    keys = user_keys(tenant_id, usernames)
    if not keys:  # a tenant without routers: nothing cached
        return
    collecting = _collecting.get()
    # from accounting: the keys ride on its answer, and go off this thread too, not waited
    # for, should that answer never reach FreeRADIUS (a retransmitted packet moves no
    # counter, so it would name no key)
    _after_commit(keys, None, wait=collecting is None, collecting=collecting)


def new_generation() -> None:
    """After commit: forget every answer (a tenant, package or router changed)."""
    if enabled():
        _after_commit([], secrets.token_hex(8), wait=True)


_budget = threading.local()


def _after_commit(
    keys: list[str],
    generation: str | None,
    *,
    wait: bool,
    collecting: list[str] | None = None,
) -> None:
    """On commit, hand the drop to the sender and wait for it, all the drops of one commit
    sharing one RADIUS_CACHE_DROP_WAIT (a sweep saving a hundred users waits once, not 100x).

    One commit's callbacks are told apart by the transaction's list of on-commit callbacks,
    a new list for each transaction; outside a transaction each save is its own commit."""
    connection = transaction.get_connection()
    commit = connection.run_on_commit if connection.in_atomic_block else object()

    def run() -> None:
        if collecting is not None:
            collecting.extend(keys)
        drop = _sender.put(keys, generation)
        if not wait:
            return
        if getattr(_budget, "commit", None) is not commit:
            _budget.commit = commit
            _budget.until = time.monotonic() + settings.RADIUS_CACHE_DROP_WAIT
        if not drop.wait(_budget.until - time.monotonic()):
            log.debug("Not waiting longer for FreeRADIUS to confirm a drop")

    transaction.on_commit(run)


def _remember(sender, instance, **kwargs) -> None:  # noqa: ANN001
    # the key this row's answers were cached under, as loaded (a rename drops the old one too)
    loaded = instance.__dict__
    instance._radius_cache_key = (loaded.get("tenant_id"), loaded.get("username"))


def _data_limit(instance) -> int | None:  # noqa: ANN001
    if "package" in instance._state.fields_cache:
        return instance.package.data_limit_mb
    from .models import Package

    limits = Package.objects.filter(pk=instance.package_id).values_list("data_limit_mb", flat=True)
    return limits.first()


def _user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:  # noqa: ANN001
    if created:  # nothing was cached for a row that did not exist (a deleted one was dropped)
        instance._radius_cache_key = (instance.tenant_id, instance.username)
        return
    usage_only = update_fields is not None and set(update_fields) <= USAGE_FIELDS
    if usage_only and _data_limit(instance) is None:
        return  # data used is in no answer without a limit
    _drop_instance(instance)


def _drop_instance(instance) -> None:  # noqa: ANN001
    old_tenant, old_name = getattr(instance, "_radius_cache_key", (None, None))
    if old_name and (old_tenant, old_name) != (instance.tenant_id, instance.username):
        drop_users(tenant_id=old_tenant, usernames=[old_name])
    drop_users(tenant_id=instance.tenant_id, usernames=[instance.username])
    instance._radius_cache_key = (instance.tenant_id, instance.username)


def _user_deleted(sender, instance, **kwargs) -> None:  # noqa: ANN001
    _drop_instance(instance)


def _changed(sender, instance, created=False, **kwargs) -> None:  # noqa: ANN001
    if created:  # nothing was cached for a row that did not exist
        return
    new_generation()


def connect() -> None:
    """Hotspot's receivers (HotspotConfig.ready)."""
    from tenants.models import Tenant

    from .models import HotspotUser, Package, Router

    post_init.connect(_remember, sender=HotspotUser, dispatch_uid="radius_cache_init")
    post_save.connect(_user_saved, sender=HotspotUser, dispatch_uid="radius_cache_user")
    post_delete.connect(_user_deleted, sender=HotspotUser, dispatch_uid="radius_cache_user_del")
    post_save.connect(_router_changed, sender=Router, dispatch_uid="radius_cache_routers")
    post_delete.connect(_router_changed, sender=Router, dispatch_uid="radius_cache_routers_del")
    for model in (Tenant, Package, Router):
        uid = f"radius_cache_{model.__name__}"
        post_save.connect(_changed, sender=model, dispatch_uid=uid)
        post_delete.connect(_changed, sender=model, dispatch_uid=uid + "_del")
