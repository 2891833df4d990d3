"""`make serve` as an operator runs it (production settings, uvicorn) and the transports' limits.

Against live servers: static files collected (pages are no 500), no `?token=` in the output,
WebSocket messages bigger than the protocol allows closed by the server (1009) before being
buffered, and the payment callback's 16 KiB limit enforced while the body is read (chunked
bodies included). (daphne, `make run`'s server, buffers a whole body before the application
sees it: there the proxy's client_max_body_size is the limit, docs/deployment.md.)
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from notifications.conf import notification_settings as conf
from notifications.realtime.pusher import consumer as pusher
from payments.api import MAX_CALLBACK_BYTES
from tests.conftest import require_program
from tests.liveserver import Daphne, production_payment_env, server_env
from tests.notifications.wsutil import committed_db

pytestmark = [pytest.mark.live, committed_db]
ROOT = Path(__file__).resolve().parents[2]
PUSHER_KEY = "serve-" + secrets.token_hex(8)


class MakeServe(Daphne):
    """`make serve HOST=127.0.0.1 PORT=<free>` in a process group of its own."""

    def __init__(self) -> None:
        env = server_env(redis_url=None)
        for name in ("DJANGO_SETTINGS_MODULE", "DEBUG"):
            env.pop(name, None)  # make serve's own default: production settings
        env.update(
            SECRET_KEY=secrets.token_urlsafe(50),
            PUSHER_APP_ID="77",
            PUSHER_APP_KEY=PUSHER_KEY,
            PUSHER_APP_SECRET=secrets.token_urlsafe(32),
            ALLOWED_HOSTS="127.0.0.1",
            SECURE_SSL_REDIRECT="false",
            STATIC_ROOT=tempfile.mkdtemp(prefix="serve-static-"),
            **production_payment_env(),
        )
        argv = [require_program("make"), "-s", "serve", "HOST=127.0.0.1", "PORT={port}"]
        super().__init__(env, argv=argv, new_session=True)
        try:
            self.wait_ready(timeout=300)  # collectstatic and two workers: slow at load 20
        except RuntimeError as error:
            pytest.fail(f"make serve did not start:\n{str(error)[-3000:]}")


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = MakeServe()
    yield server
    server.stop()


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
        return response.status, response.read().decode()


def test_the_makefile_limit_is_the_largest_frame_the_protocol_allows():
    makefile = (ROOT / "Makefile").read_text()
    [size] = re.findall(r"^WS_MAX_SIZE \?= (\d+)$", makefile, re.M)
    assert int(size) == max(conf.WS_MAX_FRAME_BYTES, pusher.MAX_FRAME_BYTES)


def test_pages_and_their_static_files_are_served_in_production(served):
    status, html = get(f"{served.http}/accounts/login/")
    assert status == 200
    [css] = re.findall(r'href="(/static/css/app\.[0-9a-f]+\.css)"', html)  # the manifest's name
    assert get(f"{served.http}{css}")[0] == 200


def test_socket_tokens_never_reach_the_servers_output(served):
    token = "eyJhbGciOiJIUzI1NiJ9.secret-" + secrets.token_hex(8)
    get(f"{served.http}/accounts/login/?token={token}")
    with pytest.raises(urllib.error.HTTPError):
        get(f"{served.http}/no-such-page/?token={token}")
    assert token not in served.output()


async def frame_too_big(ws_url: str) -> int | None:
    """Send a Pusher socket one message past the protocol's limit; the close code, if closed."""
    async with connect(f"{ws_url}/app/{PUSHER_KEY}?protocol=7") as ws:
        await asyncio.wait_for(ws.recv(), 10)  # pusher:connection_established
        await ws.send('{"event":"pusher:ping","data":"' + "x" * (pusher.MAX_FRAME_BYTES) + '"}')
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None


async def test_uvicorn_closes_a_message_bigger_than_the_protocol_allows(served):
    assert await frame_too_big(f"ws://127.0.0.1:{served.port}") == 1009


def chunked_callback(port: int, total: int) -> tuple[str, float]:
    """POST `total` bytes of a chunked body without ending it; (status line, seconds waited)."""
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(
            b"POST /api/payments/callback/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nX-Signature: " + b"0" * 64 + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 1024
        sent = 0
        try:
            while sent < total:
                sock.sendall(b"400\r\n" + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass  # the server already answered and closed
        started = time.monotonic()
        sock.settimeout(30)  # the body never ends: only a server that stops reading answers
        try:
            data = sock.recv(4096)
        except TimeoutError:
            data = b""
        return data.split(b"\r\n", 1)[0].decode(), time.monotonic() - started


def test_the_callback_refuses_a_chunked_body_past_16_kib_while_reading_it(served):
    status, _ = chunked_callback(served.port, MAX_CALLBACK_BYTES + 4096)
    assert status.split(" ")[1:2] == ["413"], status


def test_a_callback_within_the_limit_still_reaches_the_view(served):
    body = b'{"reference": "NO-SUCH-REF", "status": "completed", "amount": "1.00"}'
    request = urllib.request.Request(  # noqa: S310
        f"{served.http}/api/payments/callback/",
        data=body,
        headers={"Content-Type": "application/json", "X-Signature": "0" * 64},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert refused.value.code == 404  # read whole, passed on, unknown reference


def test_a_declared_length_past_the_limit_is_refused_before_reading(served):
    with socket.create_connection(("127.0.0.1", served.port), 10) as sock:
        sock.sendall(
            b"POST /api/payments/callback/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2500000\r\n\r\n{"
        )
        sock.settimeout(30)
        assert b" 413 " in sock.recv(4096).split(b"\r\n", 1)[0]
