"""A real FreeRADIUS 3 for the tests, configured by `manage.py radius_config`, and RADIUS clients.

Each test's routers send from loopback addresses of their own (127.0.1.2, 127.0.1.3, ...) so
FreeRADIUS's cached dynamic clients from an earlier test never answer for a later one.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from pyrad import packet
from pyrad.client import Client, Timeout

from hotspot.coa import dictionary

_addresses = itertools.count()


def next_address() -> str:
    """A loopback address no earlier test of this run used (127.1.0.2, 127.1.0.3, ...)."""
    n = next(_addresses)
    return f"127.1.{n // 250 % 250}.{n % 250 + 2}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


@dataclass
class FreeRadius:
    api_url: str
    program: str = "freeradius"
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="radius-")))
    auth_port: int = 0
    acct_port: int = 0
    cache_port: int = 0
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60) -> None:
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_udp_port())
        self.auth_port, self.acct_port, self.cache_port = sorted(ports)
        call_command(
            "radius_config",
            "--dir", str(self.directory),
            "--api-url", self.api_url,
            "--auth-port", str(self.auth_port),
            "--acct-port", str(self.acct_port),
            "--cache-port", str(self.cache_port),
        )  # fmt: skip
        # RADIUS_TEST_DEBUG=1: FreeRADIUS's debug output (every module call) in self.output
        debug = ["-X"] if os.environ.get("RADIUS_TEST_DEBUG") else []
        self.process = subprocess.Popen(
            [self.program, "-f", *debug, "-d", str(self.directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.output.append(line)
                if "Ready to process requests" in line:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("FreeRADIUS did not start:\n" + "".join(self.output[-50:]))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def log(self) -> str:
        return "".join(self.output[-80:])


class Nas:
    """A router as FreeRADIUS sees it: packets from `address`, signed with `secret`."""

    def __init__(self, radius: FreeRadius, address: str, secret: str, *, timeout: float = 3):
        self.radius, self.address, self.secret = radius, address, secret
        self.timeout = timeout

    def _client(self) -> Client:
        client = Client(
            server="127.0.0.1",
            authport=self.radius.auth_port,
            acctport=self.radius.acct_port,
            secret=self.secret.encode(),
            dict=dictionary(),
        )
        client.timeout = self.timeout
        client.retries = 5  # the first packet from a new router waits for its client lookup
        client.bind((self.address, 0))
        return client

    def _send(self, request: packet.Packet) -> packet.Packet | None:
        client = request._client  # type: ignore[attr-defined]
        try:
            return client.SendPacket(request)
        except Timeout:
            return None
        finally:
            client._socket.close()

    def login(self, username: str, password: str, *, chap: bool = False) -> packet.Packet | None:
        """An Access-Request (PAP or CHAP); the reply, or None when FreeRADIUS stays silent."""
        client = self._client()
        request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=username)
        request["NAS-Identifier"] = "test-nas"
        request["Calling-Station-Id"] = "AA-BB-CC-DD-EE-FF"
        if chap:
            challenge = secrets.token_bytes(16)
            chap_id = secrets.randbelow(256)
            digest = hashlib.md5(bytes([chap_id]) + password.encode() + challenge).digest()  # noqa: S324
            request["CHAP-Challenge"] = challenge
            request["CHAP-Password"] = bytes([chap_id]) + digest
        else:
            request["User-Password"] = request.PwCrypt(password)
        request._client = client  # type: ignore[attr-defined]
        return self._send(request)

    def account(self, status: str, session_id: str, username: str, **attrs) -> packet.Packet | None:
        client = self._client()
        request = client.CreateAcctPacket(User_Name=username)
        request["Acct-Status-Type"] = status
        request["Acct-Session-Id"] = session_id
        for name, value in attrs.items():
            request[name.replace("_", "-")] = value
        request._client = client  # type: ignore[attr-defined]
        return self._send(request)


def reply_dict(reply: packet.Packet) -> dict[str, object]:
    """Attribute name → value (single values unwrapped) of a reply."""
    out = {}
    for key in reply.keys():  # noqa: SIM118 (pyrad: keys() gives names, iteration codes)
        values = reply[key]
        out[key] = values[0] if len(values) == 1 else values
    return out


class CoaListener:
    """A router's CoA port: records Disconnect-Requests, answers ACK, NAK or nothing."""

    def __init__(self, address: str, secret: str, answer: str = "ack"):
        self.secret = secret.encode()
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[dict[str, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            request = packet.Packet(secret=self.secret, dict=dictionary(), packet=data)
            verified = request.VerifyPacket() if hasattr(request, "VerifyPacket") else None
            self.received.append(
                {
                    "code": request.code,
                    "User-Name": request["User-Name"][0],
                    "Acct-Session-Id": request["Acct-Session-Id"][0],
                    "signed": _coa_request_signed(data, self.secret),
                    "verified": verified,
                }
            )
            if self.answer == "silence":
                continue
            code = packet.DisconnectACK if self.answer == "ack" else packet.DisconnectNAK
            reply = request.CreateReply(code=code)
            self.sock.sendto(reply.ReplyPacket(), peer)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def _coa_request_signed(data: bytes, secret: bytes) -> bool:
    """RFC 5176 §3.5: Request Authenticator = MD5(code+id+length+16 zero octets+attrs+secret)."""
    expected = hashlib.md5(data[:4] + b"\x00" * 16 + data[20:] + secret).digest()  # noqa: S324
    return expected == data[4:20]


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    """Poll `condition()` until truthy (returned) or fail after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
