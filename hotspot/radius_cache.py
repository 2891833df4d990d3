"""Dropping FreeRADIUS's cached answers the moment the platform changes one.

FreeRADIUS keeps each Access-Accept's answer in memory (rlm_cache, hotspot/freeradius.py),
keyed on "generation:router-id:User-Name". Whatever changes an answer drops it, after its
transaction commits and before the code that made the change goes on:

- a hotspot user saved or deleted (status, password, expiry, package, data used against a
  limit): its keys on every router of its tenant (``Hotspot-Drop-Key``);
- a tenant, package or router saved or deleted: a new generation (every answer at once; rare);

sent as one Access-Request to the ``platform_cache_control`` listener of each FreeRADIUS in
RADIUS_CACHE_SERVERS, which answers once the entries are gone. From inside an accounting call
(FreeRADIUS is waiting on us, so a packet back to it could wait for a thread it holds) the keys
ride on the accounting answer instead (:func:`collect`). Model signals, not the services'
signals, so Django admin and shell edits drop too.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import logging
import queue
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save

log = logging.getLogger(__name__)

#: hotspot/freeradius.py VENDOR_ID and its attributes
VENDOR_ID = 65400
DROP_KEY, GENERATION = 1, 2
MESSAGE_AUTHENTICATOR = 80
MAX_PACKET = 4000
#: a save of only these fields changes an answer only when the package has a data limit
USAGE_FIELDS = frozenset({"data_used_bytes", "data_used_mb", "updated_at"})

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


def send(*, keys: Iterable[str] = (), generation: str | None = None) -> bool:
    """Drop `keys` (and switch to `generation`) on every FreeRADIUS; True when all answered."""
    keys = list(dict.fromkeys(keys))
    if not enabled() or not (keys or generation):
        return True
    secret = cache_secret().encode()
    answered = True
    for server in settings.RADIUS_CACHE_SERVERS:
        for attributes in _packets(keys, generation):
            outcome = _exchange(_address(server), attributes, secret)
            if outcome == "refused":  # no FreeRADIUS there (make run without one): no cache
                log.info("No FreeRADIUS cache listens at %s", server)
                answered = False
                break
            if outcome != "ok":
                log.warning("FreeRADIUS cache at %s did not confirm a drop", server)
                answered = False
    return answered


def _exchange(address: tuple[str, int], attributes: bytes, secret: bytes) -> str:
    """ "ok" (confirmed), "refused" (nothing listens there) or "timeout"."""
    ident = secrets.randbelow(256)
    data, authenticator = build_request(ident, attributes, secret)
    timeout = settings.RADIUS_CACHE_TIMEOUT
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
        except OSError:
            return "refused"
        for _ in range(max(1, settings.RADIUS_CACHE_RETRIES)):
            try:
                sock.send(data)
            except OSError:
                return "refused"
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    reply = sock.recv(4096)
                except TimeoutError:
                    break
                except OSError:  # ICMP port unreachable
                    return "refused"
                if reply_ok(reply, ident, authenticator, secret):
                    return "ok"
    return "timeout"


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


def user_keys(tenant_id: int, usernames: Iterable[str]) -> list[str]:
    from .models import Router

    routers = list(Router.objects.filter(tenant_id=tenant_id).values_list("pk", flat=True))
    return [f"{router}:{name}" for name in dict.fromkeys(usernames) for router in routers]


def drop_users(*, tenant_id: int, usernames: Iterable[str]) -> None:
    """After commit: forget these users' answers on every router of the tenant."""
    if not enabled():
        return
    names = list(usernames)
    collecting = _collecting.get()

    def run() -> None:
        keys = user_keys(tenant_id, names)
        if collecting is not None:
            collecting.extend(keys)
            # and off this thread too, should the accounting answer never reach FreeRADIUS
            # (a retransmitted packet moves no counter, so it would name no key)
            _background.put(keys)
        else:
            send(keys=keys)

    transaction.on_commit(run)


class _Background:
    """One daemon thread sending drops that nobody waits for."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def put(self, keys: list[str]) -> None:
        if not keys:
            return
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="radius-cache", daemon=True)
                self.thread.start()
        self.queue.put(keys)

    def run(self) -> None:
        while True:
            keys = self.queue.get()
            try:
                send(keys=keys)
            except Exception:
                log.exception("Dropping cached RADIUS answers %s failed", keys)


_background = _Background()


def new_generation() -> None:
    """After commit: forget every answer (a tenant, package or router changed)."""
    if not enabled():
        return
    transaction.on_commit(lambda: send(generation=secrets.token_hex(8)))


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
    for model in (Tenant, Package, Router):
        uid = f"radius_cache_{model.__name__}"
        post_save.connect(_changed, sender=model, dispatch_uid=uid)
        post_delete.connect(_changed, sender=model, dispatch_uid=uid + "_del")
