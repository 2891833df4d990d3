#!/usr/bin/env python
"""RADIUS benchmark: Access-Requests/s and p99 through FreeRADIUS → platform (rlm_rest), beside
FreeRADIUS answering the same users from its own `files` module in the same run (the limit of
this machine and of this load generator). Prints one JSON line.

    python bench/radius.py [--requests 20000] [--concurrency 200] [--users 500] [--workers 2]
                           [--database-url postgres://...] [--rounds 2] [--cache-ttl 30]
                           [--disables 20] [--new-share 0.1]

--cache-ttl 0 measures the platform without FreeRADIUS's cache (every request over HTTP).
--new-share S makes that share of each run's Access-Requests a first login: a user never seen
before in the whole run (so a cache miss, answered over HTTP), spread evenly among the repeat
logins of the `--users` pool; `files` gets the same sequence. After the runs, `--disables` users
are disabled one by one through hotspot.services (the drop is sent after commit) and each is
sent an Access-Request at once: all must be rejected; the time each call spent after its commit
is reported too.

Both targets are one FreeRADIUS (`manage.py radius_config` + a static `files` client), so the only
difference is where the answer comes from. Every answer must be an Access-Accept (counted).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-radius-token-" + secrets.token_hex(8)
PLATFORM_NAS, PLATFORM_SECRET = "127.2.0.2", "bench-platform"
FILES_NAS, FILES_SECRET = "127.2.0.3", "bench-files"
PASSWORD = "bench-pw-1"

SETUP = """
from tenants.models import Tenant
from hotspot.models import Package, HotspotUser
from hotspot.services import router_create
from django.utils import timezone
from datetime import timedelta
t = Tenant.objects.create(name="Bench", slug="bench", status="active",
                          contact_email="b@example.com")
p = Package.objects.create(tenant=t, name="Bench", price=10, duration_minutes=600,
                           data_limit_mb=1024, speed_limit="5M/2M")
router_create(tenant=t, name="bench", address={nas!r}, secret={secret!r}, by=None)
now = timezone.now()
HotspotUser.objects.bulk_create([
    HotspotUser(tenant=t, package=p, username=name, password={pw!r},
                starts_at=now, expires_at=now + timedelta(hours=10))
    for name in {names!r}
], batch_size=500)
"""


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1" if kind == socket.SOCK_STREAM else "0.0.0.0", 0))
        return sock.getsockname()[1]


def access_request(ident: int, username: str, password: str, secret: bytes) -> tuple[bytes, bytes]:
    """A PAP Access-Request (RFC 2865) built by hand: pyrad costs more than FreeRADIUS here."""
    authenticator = secrets.token_bytes(16)
    padded = password.encode().ljust(16, b"\0")
    digest = hashlib.md5(secret + authenticator).digest()  # noqa: S324 (RFC 2865)
    hidden = bytes(a ^ b for a, b in zip(padded, digest, strict=True))
    attrs = bytes([1, 2 + len(username)]) + username.encode() + bytes([2, 18]) + hidden
    header = struct.pack("!BBH", 1, ident, 20 + len(attrs))
    return header + authenticator + attrs, authenticator


class Load(asyncio.DatagramProtocol):
    """Keeps `concurrency` requests in flight from one source address; latencies in seconds."""

    def __init__(
        self, secret: str, users: list[str], total: int, concurrency: int, new: frozenset[str]
    ) -> None:
        self.secret = secret.encode()
        self.users, self.total, self.concurrency = users, total, concurrency
        self.new = new  # first logins among `users` (their latencies are also kept apart)
        self.new_latencies: list[float] = []
        self.sent_new: dict[int, bool] = {}
        self.sent = 0
        self.inflight: dict[int, float] = {}
        self.packets: dict[int, tuple[bytes, int, float]] = {}  # id → (data, tries, last sent)
        self.retransmits = 0
        self.lost = 0
        self.latencies: list[float] = []
        self.accepts = 0
        self.other = 0
        # FIFO: an id is reused as late as possible (FreeRADIUS drops a "conflicting" packet
        # whose id it is still finishing)
        self.free_ids = collections.deque(range(256))
        self.done = asyncio.get_event_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        # 200 answers can land while this loop is busy: a small buffer drops them
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)

    def fill(self) -> None:
        while self.sent < self.total and len(self.inflight) < self.concurrency and self.free_ids:
            ident = self.free_ids.popleft()
            user = self.users[self.sent % len(self.users)]
            self.sent_new[ident] = user in self.new
            data, _ = access_request(ident, user, PASSWORD, self.secret)
            self.inflight[ident] = time.perf_counter()
            self.packets[ident] = (data, 1, self.inflight[ident])
            self.sent += 1
            assert self.transport is not None
            self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        ident = data[1]
        started = self.inflight.pop(ident, None)
        if started is None:
            return
        self.packets.pop(ident, None)
        self.latencies.append(time.perf_counter() - started)
        if self.sent_new.pop(ident, False):
            self.new_latencies.append(self.latencies[-1])
        if data[0] == 2:
            self.accepts += 1
        else:
            self.other += 1
        self.free_ids.append(ident)
        self.finish_or_fill()

    def finish_or_fill(self) -> None:
        if len(self.latencies) + self.lost >= self.total and not self.done.done():
            self.done.set_result(None)
        self.fill()

    def retransmit(self, timeout: float = 3.0, tries: int = 3) -> None:
        """As a NAS does: resend an unanswered request (same id and authenticator), then give up."""
        now = time.perf_counter()
        for ident, (data, sent_tries, last) in list(self.packets.items()):
            if now - last < timeout:
                continue
            if sent_tries >= tries:
                del self.packets[ident]
                del self.inflight[ident]
                self.free_ids.append(ident)
                self.lost += 1
                continue
            self.packets[ident] = (data, sent_tries + 1, now)
            self.retransmits += 1
            assert self.transport is not None
            self.transport.sendto(data)
        self.finish_or_fill()


def percentile(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2) if values else None


def sequence(repeat: list[str], new: list[str], total: int, share: float) -> list[str]:
    """`total` usernames: a `share` of them the `new` ones in order, evenly spread among repeats."""
    names, used = [], 0
    for i in range(total):
        if used < len(new) and int((i + 1) * share) > used:
            names.append(new[used])
            used += 1
        else:
            names.append(repeat[i % len(repeat)])
    return names


async def drive(
    nas: str,
    port: int,
    secret: str,
    users: list[str],
    total: int,
    conc: int,
    new: frozenset[str] = frozenset(),
) -> dict:
    loop = asyncio.get_running_loop()
    transport, load = await loop.create_datagram_endpoint(
        lambda: Load(secret, users, total, conc, new),
        local_addr=(nas, 0),
        remote_addr=("127.0.0.1", port),
    )
    started = time.perf_counter()
    load.fill()

    async def tick() -> None:
        while not load.done.done():
            await asyncio.sleep(0.5)
            load.retransmit()

    ticker = asyncio.create_task(tick())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(load.done), timeout=max(120, total / 20))
    elapsed = time.perf_counter() - started
    ticker.cancel()
    transport.close()
    lat = load.latencies
    result = {
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": percentile(lat, 0.50),
        "p99_ms": percentile(lat, 0.99),
    }
    if new:
        result |= {
            "new_logins": len(load.new_latencies),
            "new_p50_ms": percentile(load.new_latencies, 0.50),
            "new_p99_ms": percentile(load.new_latencies, 0.99),
        }
    return result | {
        "accepts": load.accepts,
        "rejects": load.other,
        "retransmits": load.retransmits,
        "lost": total - len(lat),
    }


async def warm(nas: str, port: int, secret: str, users: list[str]) -> None:
    """The first packets from a router make FreeRADIUS look its client up; retry until answered."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((nas, 0))
        sock.settimeout(1)
        data, _ = access_request(1, users[0], PASSWORD, secret.encode())
        sock.sendto(data, ("127.0.0.1", port))
        try:
            reply, _ = sock.recvfrom(4096)
            if reply[0] == 2:
                return
        except TimeoutError:
            pass
        finally:
            sock.close()
    raise SystemExit(f"FreeRADIUS never accepted a request from {nas}")


def disable_then_login(usernames: list[str], auth_port: int) -> dict:
    """Disable each user (cached by the runs) through the service, then log in at once.

    The outer atomic block's first on-commit callback marks the commit, so `after_commit` is
    what the call spent once its change was committed (the cache drop, the event wake)."""
    from django.db import transaction

    from hotspot import services
    from hotspot.models import HotspotUser

    took, after_commit, rejected, accepted = [], [], 0, 0
    for name in usernames:
        user = HotspotUser.objects.get(tenant__slug="bench", username=name)
        committed: list[float] = []
        started = time.perf_counter()
        with transaction.atomic():
            transaction.on_commit(lambda marks=committed: marks.append(time.perf_counter()))
            services.hotspot_user_disable(hotspot_user=user, by=None)
        done = time.perf_counter()
        took.append(done - started)
        after_commit.append(done - committed[0])
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((PLATFORM_NAS, 0))
        sock.settimeout(5)
        data, _ = access_request(1, name, PASSWORD, PLATFORM_SECRET.encode())
        sock.sendto(data, ("127.0.0.1", auth_port))
        try:
            reply, _ = sock.recvfrom(4096)
            rejected += reply[0] == 3
            accepted += reply[0] == 2
        except TimeoutError:
            pass
        finally:
            sock.close()
    return {
        "users": len(usernames),
        "rejected": rejected,
        "accepted": accepted,
        "disable_ms_p50": percentile(took, 0.5),
        "disable_ms_max": percentile(took, 1.0),
        "after_commit_ms_p50": percentile(after_commit, 0.5),
        "after_commit_ms_p99": percentile(after_commit, 0.99),
        "after_commit_ms_max": percentile(after_commit, 1.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of the platform")
    parser.add_argument("--rounds", type=int, default=2, help="files/platform pairs, alternated")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--cache-ttl", type=int, default=30, help="0: no FreeRADIUS cache")
    parser.add_argument("--disables", type=int, default=20)
    parser.add_argument(
        "--new-share", type=float, default=0.0,
        help="share of Access-Requests that are a first login (a user never seen before)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.concurrency > 255:
        raise SystemExit("--concurrency is at most 255 (one RADIUS id space per router)")
    if not 0 <= args.new_share <= 1:
        raise SystemExit("--new-share is a share, between 0 and 1")

    scratch = Path(tempfile.mkdtemp(prefix="bench-radius-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "0",
        "DATABASE_URL": args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}",
        "RADIUS_API_TOKEN": TOKEN,
        "RADIUS_REJECT_DELAY": "0",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "60",
        "RADIUS_CACHE_TTL": str(args.cache_ttl),
    }
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    if args.database_url:  # a reused database: start from a clean bench tenant
        # users first (their package is PROTECTed); no FreeRADIUS runs yet to drop answers from
        subprocess.run(
            [python, "manage.py", "shell", "-c",
             "from tenants.models import Tenant; from hotspot.models import HotspotUser; "
             "HotspotUser.objects.filter(tenant__slug='bench').delete(); "
             "Tenant.objects.filter(slug='bench').delete()"],
            cwd=ROOT, env={**env, "RADIUS_CACHE_TTL": "0"}, check=True,
        )  # fmt: skip
    users = [f"bench{i:05d}" for i in range(args.users)]
    # each round's first logins are users no earlier round, warm-up or repeat ever sent
    per_round = int(args.requests * args.new_share)
    fresh = [[f"new{r}-{i:06d}" for i in range(per_round)] for r in range(args.rounds)]
    sequences = [sequence(users, names, args.requests, args.new_share) for names in fresh]
    everyone = users + [name for names in fresh for name in names]
    setup = SETUP.format(nas=PLATFORM_NAS, secret=PLATFORM_SECRET, pw=PASSWORD, names=everyone)
    subprocess.run(
        [python, "manage.py", "shell"], input=setup.encode(), cwd=ROOT, env=env, check=True
    )

    http_port = free_port(socket.SOCK_STREAM)
    platform = subprocess.Popen(
        [python, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(http_port), "--workers", str(args.workers), "--log-level", "warning",
         "--no-access-log", "--lifespan", "on"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    auth_port, acct_port, cache_port = free_port(), free_port(), free_port()
    env["RADIUS_CACHE_SERVERS"] = f"127.0.0.1:{cache_port}"
    raddb = scratch / "raddb"
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "RADIUS_API_TOKEN",
                "RADIUS_CACHE_TTL", "RADIUS_CACHE_SERVERS",
            )
        }
    )  # fmt: skip
    import django

    django.setup()
    from hotspot.freeradius import RadiusConfig, write_config
    from hotspot.radius_cache import cache_secret

    files_users = "".join(
        f'{u} Cleartext-Password := "{PASSWORD}"\n\tSession-Timeout = 36000, '
        f'Acct-Interim-Interval = 300, Mikrotik-Rate-Limit = "5M/2M"\n'
        for u in everyone
    )
    files_client = (
        f"client files_baseline {{\n\tipaddr = {FILES_NAS}\n\tsecret = {FILES_SECRET}\n"
        "\tshortname = files-baseline\n}\n"
    )
    write_config(
        RadiusConfig(
            api_url=f"http://127.0.0.1:{http_port}", token=TOKEN, auth_port=auth_port,
            acct_port=acct_port, reject_delay=0, pool_max=64, cache_ttl=args.cache_ttl,
            cache_port=cache_port, cache_secret=cache_secret(TOKEN),
        ),
        raddb, files_users=files_users, files_client=files_client,
    )  # fmt: skip
    # BENCH_RADIUS_LOG=FILE keeps FreeRADIUS's log (dropped packets are reported there)
    radius_log = open(os.environ.get("BENCH_RADIUS_LOG") or os.devnull, "w")  # noqa: SIM115
    radiusd = subprocess.Popen(
        ["freeradius", "-f", "-d", str(raddb)], stdout=radius_log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", http_port), 0.2),
            ):
                break
            if time.monotonic() > deadline or platform.poll() is not None:
                raise SystemExit("the platform did not start")
            time.sleep(0.2)
        asyncio.run(warm(FILES_NAS, auth_port, FILES_SECRET, users))
        asyncio.run(warm(PLATFORM_NAS, auth_port, PLATFORM_SECRET, users))
        # warm the pools and the workers: a short run each, not counted
        asyncio.run(drive(PLATFORM_NAS, auth_port, PLATFORM_SECRET, users, 2000, args.concurrency))
        asyncio.run(drive(FILES_NAS, auth_port, FILES_SECRET, users, 2000, args.concurrency))
        runs = {"files": [], "platform": []}
        for names, first in zip(sequences, fresh, strict=True):
            for name, nas, secret in (
                ("files", FILES_NAS, FILES_SECRET),
                ("platform", PLATFORM_NAS, PLATFORM_SECRET),
            ):
                run = drive(
                    nas, auth_port, secret, names, args.requests, args.concurrency,
                    frozenset(first),
                )  # fmt: skip
                runs[name].append(asyncio.run(run))
        safety = disable_then_login(users[: args.disables], auth_port)
    finally:
        radiusd.terminate()
        platform.terminate()
        radiusd.wait(10)
        platform.wait(10)
        radius_log.close()

    def best(name: str) -> dict:
        return max(runs[name], key=lambda r: r["rps"])

    files, plat = best("files"), best("platform")
    print(
        json.dumps(
            {
                "bench": "radius",
                "requests": args.requests,
                "concurrency": args.concurrency,
                "users": args.users,
                "new_share": args.new_share,
                "workers": args.workers,
                "database": "postgresql" if args.database_url.startswith("postgres") else "sqlite",
                "load_1min": round(os.getloadavg()[0], 2),
                "files": files,
                "platform": plat,
                "platform_over_files": round(plat["rps"] / files["rps"], 3)
                if files["rps"]
                else None,
                "disable_then_login": safety,
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
