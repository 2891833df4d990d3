"""Real server processes for every live and browser test: THE one helper.

`Daphne` / `Uvicorn`: the ASGI app in a child process on a free port (or a given one, to
restart in place), with the test settings and database (`server_env`, PostgreSQL or SQLite,
Redis when given) or an environment of the caller's (`clean_env`; tests/browser/live.py: a
seeded demo site); `Uvicorn(workers=N)` is the production command, `argv=` any other command
line (`{port}` is filled in). `RedisServer`: a throw-away redis-server to stop and restart;
`TcpProxy`: a relay to a real server (PostgreSQL) that can be cut (`RedisCutProxy`: in the middle
of a Redis pipeline). Plus `wait_until`, plain
HTTP (`get`, `get_json`), an HTTP client with cookies and CSRF (`Browser`), other OS processes
(`run_shell`, `run_manage`, `manage_check`) and websocket helpers. Importable without Django
settings (docs/screenshots/take.py uses it too).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from websockets.exceptions import ConnectionClosed

BASE_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `condition` until it returns something truthy (generous deadlines, no fixed sleep)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


def database_url_for_servers() -> str:
    """DATABASE_URL of the database the tests run on (call once the test DB exists)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return (
        f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def server_env(*, redis_url: str | None, prefix: str | None = None, **extra: str) -> dict[str, str]:
    """Environment of a server (or shell) process: test settings, test DB, chosen layer.

    `extra`: more settings, e.g. REDIS_SENTINELS=... or REDIS_TLS_CA_CERTS=... (the
    environment's own REDIS_* settings are never inherited).
    """
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url_for_servers(),
        PYTHONPATH=str(BASE_DIR),
        PYTHONUNBUFFERED="1",
    )
    for name in [n for n in env if n.startswith("REDIS_")]:
        del env[name]
    if redis_url:
        env["REDIS_URL"] = redis_url
    if redis_url or any(name.startswith("REDIS_") for name in extra):
        env["CHANNELS_PREFIX"] = prefix or settings.CHANNELS_PREFIX
    env.update(extra)
    return env


class Daphne:
    """`daphne -b 127.0.0.1 -p <port> config.asgi:application` as a child process.

    `port`: a free one by default; a given one restarts a server where its clients expect it.
    `argv`: another command line instead (`{port}` is replaced); `new_session`: run it in a
    process group of its own (a `make` target and its children), stopped as a group.
    """

    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        *,
        argv: list[str] | None = None,
        cwd: Path = BASE_DIR,
        new_session: bool = False,
    ) -> None:
        self.env = env
        self.port = port or free_port()
        self.new_session = new_session
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)  # noqa: SIM115
        command = [part.replace("{port}", str(self.port)) for part in argv or self.command()]
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )

    def command(self) -> list[str]:
        return [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port)] + [
            "config.asgi:application"
        ]

    @classmethod
    def start(cls, env: dict[str, str], count: int = 1) -> list[Daphne]:
        """Start `count` servers at once and wait until all accept connections."""
        servers = [cls(env) for _ in range(count)]
        try:
            for server in servers:
                server.wait_ready()
        except Exception:
            for server in servers:
                server.stop()
            raise
        return servers

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/notifications/"

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the server accepts connections; its log in the error if it exits or never does."""

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}):\n{self.output()}")
            return accepting(self.port)

        try:
            wait_until(up, timeout, "the server to accept connections")
        except AssertionError:
            output = self.output()
            self.stop()
            raise RuntimeError(f"server did not start:\n{output}") from None

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def _signal(self, sig: int) -> None:
        if self.new_session:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)


class Uvicorn(Daphne):
    """The production server (docs/deployment.md): `workers` uvicorn workers with ASGI lifespan."""

    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        *,
        workers: int = 1,
        extra: list[str] | None = None,
        **kw,
    ):
        """`extra`: flags after the production ones (a later flag wins: `--ws-per-message-deflate
        true` serves as uvicorn's default would)."""
        self.workers = workers
        self.extra = extra or []
        super().__init__(env, port, **kw)

    def command(self) -> list[str]:
        return [str(BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1"] + [
            "--port", str(self.port), "--workers", str(self.workers), "--lifespan", "on",
            "--ws", "config.wsprotocol:FrameProtocol", "--ws-per-message-deflate", "false",
            "--log-level", "warning",
        ] + self.extra  # fmt: skip


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away certificate authority and a server certificate it signed (PEM paths)."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(dir: Path, hostname: str = "127.0.0.1") -> TlsFiles:
    """Self-signed CA + a server cert for `hostname` (and localhost), made with openssl."""
    program = shutil.which("openssl")
    if program is None:
        raise RuntimeError("openssl is not installed")
    dir.mkdir(parents=True, exist_ok=True)
    names = ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt")
    ca_key, ca, key, csr, cert = (dir / name for name in names)
    ext = dir / "san.cnf"
    ext.write_text(f"subjectAltName=IP:{hostname},DNS:localhost\n")

    def openssl(*args: str) -> None:
        subprocess.run([program, *args], check=True, capture_output=True, timeout=60)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=redis-test",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return TlsFiles(ca=ca, cert=cert, key=key)


class RedisServer:
    """A throw-away redis-server process (no persistence) that can be stopped (or killed) and
    restarted on the same port; `dir`: its working directory (and config file: Sentinel
    rewrites the config of the servers it reconfigures). `tls`: serve TLS only, on its port.
    `replica_of`: start as a replica of that server. `sentinel_of`: run as a Sentinel
    monitoring that server as master `master_name` (quorum 1, down after 1 s); with `tls`, a
    Sentinel on a TLS port that reaches its (TLS) master over TLS."""

    def __init__(
        self,
        dir: Path | None = None,
        *,
        tls: TlsFiles | None = None,
        replica_of: RedisServer | None = None,
        sentinel_of: RedisServer | None = None,
        master_name: str = "mymaster",
    ) -> None:
        self.port = free_port()
        self.dir = dir or Path(tempfile.mkdtemp(prefix="redis-"))
        self.tls = tls
        self.replica_of = replica_of
        self.sentinel_of = sentinel_of
        self.master_name = master_name
        self.process: subprocess.Popen | None = None
        self.log = self.dir / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def _config(self) -> Path:
        lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}", f"logfile {self.log}"]
        if self.sentinel_of is not None:
            name, master = self.master_name, self.sentinel_of
            lines += [
                f"sentinel monitor {name} 127.0.0.1 {master.port} 1",
                f"sentinel down-after-milliseconds {name} 1000",
                f"sentinel failover-timeout {name} 10000",
                f"sentinel parallel-syncs {name} 1",
            ]
        else:
            lines += ['save ""', "appendonly no"]
        if self.tls is not None:
            lines = [line for line in lines if not line.startswith("port ")]
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {self.tls.cert}",
                f"tls-key-file {self.tls.key}",
                f"tls-ca-cert-file {self.tls.ca}",
                "tls-auth-clients no",
                "tls-replication yes",  # a replica's or a sentinel's links to the master too
            ]
        if self.replica_of is not None:
            lines.append(f"replicaof 127.0.0.1 {self.replica_of.port}")
        path = self.dir / f"redis-{self.port}.conf"
        if self.sentinel_of is None or not path.exists():  # a sentinel keeps what it learnt
            path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> RedisServer:
        program = shutil.which("redis-server") or "redis-server"
        self.dir.mkdir(parents=True, exist_ok=True)
        sentinel = ["--sentinel"] if self.sentinel_of is not None else []
        self.process = subprocess.Popen(
            [program, str(self._config()), *sentinel],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: accepting(self.port), 30, "redis-server to start")
        return self

    def client(self, **kwargs):
        """A blocking redis-py client of this server (TLS verified against its CA)."""
        import redis

        if self.tls is not None:
            kwargs.setdefault("ssl_ca_certs", str(self.tls.ca))
        return redis.Redis.from_url(self.url, socket_timeout=10, **kwargs)

    def stop(self, *, kill: bool = False) -> None:
        """Stop it (SIGTERM), or `kill` it (SIGKILL: a crash, no goodbye to clients)."""
        if self.process is not None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(10)
            self.process = None


class TcpProxy:
    """A TCP relay on a port of its own to a real server (PostgreSQL, a Redis of the test's):
    stop() makes the server unreachable for whoever connects through it (refused, open
    connections cut), refuse() only turns new connections away, start() brings it back on the
    same port. The shared server itself is never stopped."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with self._lock:
                    self._open.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def refuse(self) -> None:
        """Refuse new connections; the open ones keep relaying (start() accepts again)."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accepting thread (Linux)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def stop(self) -> None:
        self.refuse()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _resp_end(data: bytes, start: int = 0) -> int | None:
    """Where the RESP2/RESP3 value at `start` ends (None: not all there yet)."""
    line_end = data.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind, head = data[start : start + 1], data[start + 1 : line_end]
    after = line_end + 2
    if kind in b"+-:_#,(":
        return after
    if kind in b"$!=":
        size = int(head)
        return after if size < 0 else (after + size + 2 if len(data) >= after + size + 2 else None)
    if kind in b"*~>%|":
        count = max(0, int(head)) * (2 if kind in b"%|" else 1)
        for _ in range(count):
            after = _resp_end(data, after)
            if after is None:
                return None
        return after
    raise ValueError(f"not RESP: {data[start : start + 20]!r}")


class RedisCutProxy(TcpProxy):
    """A TcpProxy to a Redis of the test's that cuts its first connection in the middle of a
    pipeline: it passes the first `cut_after` PUBLISH commands on, waits for Redis's replies
    to everything it passed, hands those to the client and then closes, so the client has
    exactly that many PUBLISHes acknowledged and Redis never saw the rest. Later connections
    are relayed as TcpProxy does (`then_refuse`: refused, until start()). `cut` is set once
    the cut happened. With `hang`, the first connection is not closed but answers nothing
    more (a Redis that hung part-way: no error reaches the client, only its own timeout)."""

    def __init__(
        self,
        upstream: tuple[str, int],
        cut_after: int,
        *,
        then_refuse: bool = False,
        hang: bool = False,
    ):
        super().__init__(upstream)
        self.cut_after = cut_after
        self.then_refuse = then_refuse
        self.hang = hang
        self.cut = threading.Event()
        self._first = True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, 5)
            if not self._first:
                with self._lock:
                    self._open.update((client, server))
                for source, target in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(source, target), daemon=True).start()
                continue
            self._first = False
            threading.Thread(target=self._cut_one, args=(client, server), daemon=True).start()

    def _cut_one(self, client: socket.socket, server: socket.socket) -> None:
        import selectors

        pending, replies = b"", b""
        forwarded = publishes = answered = 0
        passing = True
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ)
            selector.register(server, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select(5):
                    data = key.fileobj.recv(65536)
                    if key.fileobj is client:
                        if not data:
                            return
                        if not passing:
                            continue  # read and dropped: Redis never sees the rest
                        pending += data
                        while passing and (end := _resp_end(pending)) is not None:
                            command, pending = pending[:end], pending[end:]
                            server.sendall(command)
                            forwarded += 1
                            if b"PUBLISH" in command.split(b"\r\n", 3)[2].upper():
                                publishes += 1
                                passing = publishes < self.cut_after
                    else:
                        replies += data
                        while (end := _resp_end(replies)) is not None:
                            client.sendall(replies[:end])
                            replies = replies[end:]
                            answered += 1
                if not passing and answered == forwarded:
                    if self.then_refuse:
                        self.refuse()
                    server.close()
                    if self.hang:
                        self.cut.set()
                        while client.recv(65536):  # open, read, never answered
                            pass
                        client.close()
                        return
                    client.shutdown(socket.SHUT_WR)  # the acknowledged replies, then EOF
                    self.cut.set()
                    while client.recv(65536):  # drain: unread data would reset the replies
                        pass
                    client.close()
                    return


class StandIn:
    """A stand-in for an external HTTP service we cannot reach (Daraja, Africa's Talking, a
    router's login page): a real HTTP server in a thread of this process, on a free port.
    A subclass answers in `handle(request, method)`, with `form()` and `respond()`."""

    def __init__(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                standin.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                standin.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    @staticmethod
    def body(request: BaseHTTPRequestHandler) -> bytes:
        return request.rfile.read(int(request.headers.get("Content-Length") or 0))

    @classmethod
    def form(cls, request: BaseHTTPRequestHandler) -> dict[str, str]:
        """The request's urlencoded form, one value per name."""
        return {k: v[0] for k, v in urllib.parse.parse_qs(cls.body(request).decode()).items()}

    @staticmethod
    def respond(
        request: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str
    ) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass


def production_payment_env() -> dict[str, str]:
    """What production settings refuse to start without for payments (payments.E004/E005):
    an https PUBLIC_URL and a Fernet key for the tenants' Daraja credentials."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return {"PUBLIC_URL": "https://hotspot.example.com", "PAYMENTS_ENCRYPTION_KEYS": key}


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without the settings a test must choose itself."""
    drop = {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "LOG_FORMAT"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PUSHER_")}
    env.update(PYTHONUNBUFFERED="1", **overrides)
    return env


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # keep the 3xx (its cookies are kept anyway)
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def get(url: str, timeout: float = 10, headers: dict[str, str] | None = None):
    """(status, headers, body) of a GET, redirects not followed; HTTP errors are answers."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def get_json(url: str, **kwargs) -> tuple[int, dict]:
    status, _, body = get(url, **kwargs)
    return status, json.loads(body)


class Browser:
    """A cookie-keeping HTTP client (stdlib) for real login/logout POSTs with CSRF."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, data: dict[str, str]) -> int:
        if "csrfmiddlewaretoken" not in data:
            data = {**data, "csrfmiddlewaretoken": self.cookie(settings.CSRF_COOKIE_NAME) or ""}
        request = urllib.request.Request(
            self.base + path,
            data=urllib.parse.urlencode(data).encode(),
            headers={"Referer": self.base + path},
        )
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:  # 3xx without following, or a real error
            if 300 <= error.code < 400:
                return error.code
            raise

    def login(self, username: str, password: str, path: str = "/admin/login/") -> str:
        """Sign in through the real login form; returns the session cookie value."""
        page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "login page has no CSRF token"
        status = self.post(
            path,
            {"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        )
        session = self.cookie(settings.SESSION_COOKIE_NAME)
        assert status == 302 and session, f"login failed ({status})"
        return session

    def logout(self, path: str = "/admin/logout/") -> None:
        self.post(path, {})


def run_shell(env: dict[str, str], code: str, timeout: float = 60) -> str:
    """Run Python in another OS process through `manage.py shell -c` (same settings as a server)."""
    return run_manage(env, "shell", "-c", code, timeout=timeout)


def run_manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """`manage.py <args>` in another OS process (e.g. fire_event), with a server's settings."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


#: what config.settings.production requires before it reads anything else (test-only values)
PRODUCTION_SECRETS = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "PUSHER_APP_ID": "1",
    "PUSHER_APP_KEY": "k",
    "PUSHER_APP_SECRET": "s",
    "PAYMENTS_ENCRYPTION_KEYS": "dGVzdC1vbmx5LXBheW1lbnRzLWtleS0wMTIzNDU2Nzg=",
    "PUBLIC_URL": "https://hotspot.example.com",
}


def manage_check(
    settings_module: str = "config.settings.test",
    *,
    drop: tuple[str, ...] = (),
    timeout: float = 120,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """`manage.py check` in another OS process under `settings_module`, with `env` over this
    process's environment less the variables whose names start with one in `drop`: how a test
    sees that a bad setting stops the start (settings are read once per process)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    environment.update(DJANGO_SETTINGS_MODULE=settings_module, **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- websockets-client helpers --------------------------------------------------------------


@database_sync_to_async
def jwt_for(user) -> str:
    from rest_framework_simplejwt.tokens import RefreshToken

    return str(RefreshToken.for_user(user).access_token)


def cookie_header(session: str) -> dict[str, str]:
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}


async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect_close(ws, code: int, timeout: float = 5) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def nothing_arrives(ws, wait: float = 0.5) -> bool:
    try:
        frame = await asyncio.wait_for(ws.recv(), wait)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected frame {frame}")
