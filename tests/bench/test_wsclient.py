"""bench/wsclient.c (fanout.py --client-impl c) against a tiny server of the test's own that
writes its frames in awkward pieces: what the C client records must be what client_worker
would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import struct
import subprocess
import time

import pytest

from bench.fanout import C_CLIENT, c_command
from tests.conftest import require_program


@pytest.fixture(scope="module")
def wsclient(tmp_path_factory) -> str:
    """The client, compiled as fanout.py compiles it, warnings fatal (-Werror)."""
    gcc = require_program("gcc")
    binary = str(tmp_path_factory.mktemp("wsclient") / "wsclient")
    argv = [gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, str(C_CLIENT)]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return binary


def frame(opcode: int, payload: bytes) -> bytes:
    """A server-to-client frame (unmasked), with the 16- or 64-bit length its size needs."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def text(obj) -> bytes:
    return frame(0x1, (obj if isinstance(obj, str) else json.dumps(obj)).encode())


def event(eid, *, pad: int = 0) -> dict:
    """An event frame of bench/fanout.py Emitter.frame's shape; `pad` lengthens its message."""
    return {
        "type": "event",
        "id": str(eid),
        "event": "SystemNotification",
        "title": "Benchmark",
        "message": "x" * pad,
        "channel": "tenant.1",
        "data": {"t": time.perf_counter()},
    }


async def read_client_frame(reader) -> tuple[int, bytes]:
    """One client frame: it must be masked (RFC 6455 5.3); (opcode, unmasked payload)."""
    b0, b1 = await reader.readexactly(2)
    assert b1 & 0x80, "client frames are masked"
    n = b1 & 0x7F
    mask = await reader.readexactly(4)
    payload = await reader.readexactly(n)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def until(check, timeout: float = 10.0):
    """Poll `check()` (sync or async) until it returns something truthy: no fixed sleep a
    loaded machine could outrun."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.01)


class Client:
    """The compiled client as ClientPool drives it: commands in, JSON lines out."""

    def __init__(self, proc) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, binary: str, **env: str) -> Client:
        proc = await asyncio.create_subprocess_exec(
            binary,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if env else None,
            limit=2**26,
            env={**os.environ, **env},
        )
        return cls(proc)

    def send(self, cmd: dict) -> None:
        self.proc.stdin.write(c_command(cmd))

    async def next(self, ev: str, timeout: float = 10) -> dict:
        """The next line whose "ev" is `ev` (progress lines in between are skipped)."""
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            assert line, "the client exited"
            msg = json.loads(line)
            if msg["ev"] == ev:
                return msg
            assert msg["ev"] == "progress", msg

    async def ask(self, cmd: dict, ev: str) -> dict:
        self.send(cmd)
        return await self.next(ev)

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.send({"cmd": "close"})
            assert (await self.next("closed"))["ev"] == "closed"
            assert await asyncio.wait_for(self.proc.wait(), 10) == 0


async def test_split_frames_extended_lengths_ping_and_close_are_handled(wsclient):
    go, requests, pongs, errors = asyncio.Event(), [], [], []

    async def dribble(writer, data: bytes, step: int) -> None:
        """`data` in pieces of `step` bytes, each its own segment (and the client's own read)."""
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
            await writer.drain()
            await asyncio.sleep(0.002)

    async def handle(reader, writer) -> None:
        try:
            await serve(reader, writer)
        except Exception as exc:  # noqa: BLE001 (asserted by the test, not lost in the task)
            errors.append(exc)
        writer.close()

    async def serve(reader, writer) -> None:
        requests.append((await reader.readuntil(b"\r\n\r\n")).decode())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
        await dribble(writer, b"Connection: Upgrade\r\n\r\n", 7)  # the answer split too
        # The product's welcome: spaces after colons, a nested object before nothing we want.
        welcome = {"type": "welcome", "user": {"id": 1, "type": "x"}, "channels": ["a"]}
        await dribble(writer, text(welcome), 1)
        await go.wait()
        await dribble(writer, text(event(1)), 1)  # 7-bit length, byte by byte
        big = text(event(2, pad=300))  # 16-bit length (126), split inside the length
        assert big[1] == 126
        await dribble(writer, big[:3], 3)
        await dribble(writer, big[3:], 100)
        huge = text(event(3, pad=70_000))  # 64-bit length (127), split inside the length
        assert huge[1] == 127
        await dribble(writer, huge[:6], 6)
        await dribble(writer, huge[6:], 40_000)
        # Key order, a numeric id, a nested "t" that is not data's, an escaped quote: a parser
        # that searched for substrings would take the wrong ones.
        t = time.perf_counter()
        odd = '{"title":"a \\"type\\":\\"welcome\\" \\\\","data":{"x":[1,{"t":-5}],"t":'
        odd += repr(t) + '},"id":4,"type":"event"}'
        assert json.loads(odd)["title"] == 'a "type":"welcome" \\'
        # A stray id above MAX_EVENT_ID (wsclient.c: ids index arrays) is ignored, not grown to.
        stray = text(event(1 << 21))
        bursts = text(odd) + text({"type": "pong"}) + stray + text(event(5)) + frame(0x9, b"hi!")
        writer.write(bursts)  # several frames in one segment, a ping among them
        await writer.drain()
        pongs.append(await read_client_frame(reader))
        writer.write(frame(0x8, struct.pack("!H", 1001) + b"going away"))
        await writer.drain()
        pongs.append(await read_client_frame(reader))  # the client's close answer
        pongs.append(await reader.read(1))  # and then it closed: b""

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await Client.start(wsclient)
    try:
        url = f"ws://127.0.0.1:{port}/ws/notifications/?token=abc"
        opened = await client.ask(
            {"cmd": "open", "urls": [url], "origin": None, "concurrency": 5, "sources": []},
            "opened",
        )
        assert opened["held"] == 1
        request = requests[0]
        assert request.startswith("GET /ws/notifications/?token=abc HTTP/1.1\r\n")
        assert f"\r\nHost: 127.0.0.1:{port}\r\n" in request
        assert f"\r\nOrigin: http://127.0.0.1:{port}\r\n" in request
        key = request.split("Sec-WebSocket-Key: ")[1].split("\r\n")[0]
        assert len(key) == 24 and key.endswith("==")

        client.send({"cmd": "phase", "ids": [1, 2, 3, 4, 5], "phase": "single"})
        await client.ask({"cmd": "cpu"}, "cpu")  # the phase is in before any event is sent
        go.set()
        reached = {(await client.next("reached"))["id"] for _ in range(5)}
        assert reached == {1, 2, 3, 4, 5}
        await until(lambda: len(pongs) == 3)  # the pong, the close answer, then EOF
        assert not errors, errors
        assert pongs == [(0xA, b"hi!"), (0x8, struct.pack("!H", 1001)), b""]

        report = await client.ask({"cmd": "report"}, "report")
        assert report["held"] == 1
        assert report["counts"] == {str(i): 1 for i in range(1, 6)}
        assert len(report["latencies"]["single"]) == 5
        assert all(0 <= v < 10 for v in report["latencies"]["single"])  # the clock is shared
        assert sorted(report["by_event"]) == ["1", "2", "3", "4", "5"]
        p50, p99, worst = report["by_event"]["4"]
        assert p50 == p99 == worst == report["latencies"]["single"][3]
        assert report["last_receipt"] > 0
        assert report["closed"] == {"closed 1001": 1}  # counted like WSClient.connection_lost
        cpu = await client.ask({"cmd": "cpu"}, "cpu")
        assert 0 < cpu["cpu"] < 5
        await client.close()
    finally:
        if client.proc.returncode is None:
            client.proc.kill()
        server.close()


async def test_failures_are_counted_like_client_worker(wsclient):
    """A refused connection, a refused handshake, a close before the welcome; events with no
    phase told land under "?" like Stats.record's default."""

    done = asyncio.Event()

    async def handle(reader, writer) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if b"refuse" in request:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        elif b"early" in request:
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            writer.write(frame(0x8, struct.pack("!H", 4003)))
        else:
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + text({"type": "welcome"}))
            writer.write(text(event(7)))
        await writer.drain()
        with contextlib.suppress(TimeoutError):  # open until the report is taken
            await asyncio.wait_for(done.wait(), 20)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead = spare.getsockname()[1]  # bound, never listening: the connect is refused
        client = await Client.start(wsclient)
        try:
            base = f"ws://127.0.0.1:{port}"
            urls = [f"{base}/ok", f"{base}/refuse", f"{base}/early", f"ws://127.0.0.1:{dead}/"]
            urls += [f"{base}/ok"]
            cmd = {"cmd": "open", "urls": urls, "origin": "http://o.example", "concurrency": 2}
            cmd["sources"] = ["127.0.0.1"]
            opened = await client.ask(cmd, "opened")
            assert opened["held"] == 2

            async def settled():  # both welcomed sockets have event 7, every failure is in
                report = await client.ask({"cmd": "report"}, "report")
                return report if report["counts"] == {"7": 2} else None

            report = await until(settled)
            assert report, "event 7 never reached both welcomed sockets"
            assert report["counts"] == {"7": 2}
            assert len(report["latencies"]["?"]) == 2
            assert report["closed"] == {
                "handshake refused": 1,
                "closed None": 1,  # WSClient counts the refused handshake's close as well
                "no welcome (4003)": 1,
                "connect failed: ConnectionRefusedError": 1,
            }
            await client.close()
        finally:
            done.set()
            if client.proc.returncode is None:
                client.proc.kill()
            server.close()


def test_commands_become_the_c_clients_lines():
    cmd = {"cmd": "open", "urls": ["ws://a/1", "ws://a/2"], "origin": None, "concurrency": 50}
    assert c_command(cmd) == b"open 50 -\nws://a/1\nws://a/2\nend\n"
    cmd.update(origin="http://o", sources=["127.0.0.1", "127.0.0.2"])
    assert c_command(cmd).startswith(b"open 50 http://o 127.0.0.1 127.0.0.2\n")
    assert c_command({"cmd": "phase", "ids": [1, 2], "phase": "burst"}) == b"phase burst 1 2\n"
    assert c_command({"cmd": "report"}) == b"report\n"
    assert os.path.exists(C_CLIENT)


class Writers:
    """A server whose sockets are welcomed and then written to by the test, all at once."""

    def __init__(self) -> None:
        self.writers: list = []
        self.done = asyncio.Event()

    async def handle(self, reader, writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + text({"type": "welcome"}))
        await writer.drain()
        self.writers.append(writer)
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self.done.wait(), 30)
            await reader.read()  # the client's close
        writer.close()

    async def send(self, data: bytes, *, pause: float = 0.0) -> None:
        """`data` to every socket, as its own segment; then `pause`."""
        for writer in self.writers:
            writer.write(data)
        for writer in self.writers:
            await writer.drain()
        if pause:
            await asyncio.sleep(pause)


async def run_burst(wsclient, *, env: dict, single_pad: int, burst: int, pause: float) -> dict:
    """Two sockets: two singles (`single_pad` long), then `burst` events one segment each,
    `pause` apart; returns how long after the last write the burst was reached, how long after
    the burst a single then took, and the client's WSCLIENT_STATS line."""
    srv = Writers()
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await Client.start(wsclient, WSCLIENT_STATS="1", **env)
    try:
        url = f"ws://127.0.0.1:{port}/"
        cmd = {"cmd": "open", "urls": [url, url], "origin": None, "concurrency": 2}
        assert (await client.ask(cmd, "opened"))["held"] == 2
        for eid in (1, 2):
            client.send({"cmd": "phase", "ids": [eid], "phase": "single"})
            await client.ask({"cmd": "cpu"}, "cpu")
            await srv.send(text(event(eid, pad=single_pad)))
            assert (await client.next("reached"))["id"] == eid
        ids = list(range(3, 3 + burst))
        client.send({"cmd": "phase", "ids": ids, "phase": "burst"})
        await client.ask({"cmd": "cpu"}, "cpu")
        for eid in ids:
            await srv.send(text(event(eid)), pause=pause)
        t_last = time.perf_counter()
        reached = set()
        while len(reached) < burst:
            reached.add((await client.next("reached"))["id"])
        tail_s = time.perf_counter() - t_last
        assert reached == set(ids)
        # Then a single: no watermark is left to delay it.
        client.send({"cmd": "phase", "ids": [99], "phase": "single"})
        await client.ask({"cmd": "cpu"}, "cpu")
        t0 = time.perf_counter()
        await srv.send(text(event(99)))
        assert (await client.next("reached"))["id"] == 99
        single_s = time.perf_counter() - t0
        report = await client.ask({"cmd": "report"}, "report")
        assert report["counts"] == {str(i): 2 for i in [1, 2, *ids, 99]}  # nothing lost or twice
        stats = (await asyncio.wait_for(client.proc.stderr.readline(), 10)).decode()
        srv.done.set()
        await client.close()
        counted = dict(
            (name, int(n))
            for n, name in re.findall(r"(\d+) (reads|SO_RCVLOWAT sets|stalls)", stats)
        )
        return {
            "tail_s": tail_s,
            "single_s": single_s,
            "reads": counted["reads"],
            "setopts": counted["SO_RCVLOWAT sets"],
            "stalls": counted["stalls"],
        }
    finally:
        srv.done.set()
        if client.proc.returncode is None:
            client.proc.kill()
        server.close()


async def test_burst_watermark_batches_reads_and_the_tail_still_arrives(wsclient):
    """80 frames (~170 bytes) a segment each, 3 ms apart, on two sockets: with a 4 KiB
    watermark each read carries many frames, yet the last frames, below it, arrive at once
    (the watermark never exceeds what a socket is still owed), and the stall fallback (set long
    here) is not what brought them."""
    env = {"WSCLIENT_RCVLOWAT": "4096", "WSCLIENT_LOWAT_STALL_MS": "5000"}
    got = await run_burst(wsclient, env=env, single_pad=0, burst=80, pause=0.003)
    assert got["stalls"] == 0  # the tail came by the watermark's own lowering
    # (bounds far below the 5 s fallback: a leftover watermark would hang to the timeout)
    assert got["tail_s"] < 2.5, got
    assert got["single_s"] < 2.5, got
    # Without the watermark: about one read per frame per socket (~160 here; a busy machine
    # only merges more frames per read, so it can only be lower).
    assert got["reads"] < 60, got
    off = await run_burst(
        wsclient, env={"WSCLIENT_RCVLOWAT": "0"}, single_pad=0, burst=80, pause=0.003
    )
    assert off["setopts"] == 0 and off["stalls"] == 0, off


async def test_burst_shorter_than_guessed_is_released_by_the_stall_fallback(wsclient):
    """Singles of 2 KB make the client guess the burst's frames that long, so it waits for
    16 KiB; 10 short frames (1.7 KB) stay below that and only the fallback (300 ms with no
    read) releases them, all of them, leaving no watermark for the single after."""
    env = {"WSCLIENT_RCVLOWAT": "16384", "WSCLIENT_LOWAT_STALL_MS": "300"}
    got = await run_burst(wsclient, env=env, single_pad=2000, burst=10, pause=0.0)
    assert got["stalls"] == 1, got  # only the fallback released them
    assert got["tail_s"] < 5.0, got
    assert got["single_s"] < 2.5, got


async def test_sockets_that_fail_at_once_answer_opened_once(wsclient):
    """Hosts that do not resolve fail inside the open itself (recursively): one `opened`, and
    the next command's answer is its own."""
    client = await Client.start(wsclient)
    try:
        urls = [f"ws://unresolvable-{k}.invalid:1/" for k in range(3)]
        opened = await client.ask(
            {"cmd": "open", "urls": urls, "origin": None, "concurrency": 2}, "opened"
        )
        assert opened["held"] == 0
        assert "cpu" in await client.ask({"cmd": "cpu"}, "cpu")  # not a second "opened"
        await client.close()
    finally:
        if client.proc.returncode is None:
            client.proc.kill()


async def test_the_client_exits_when_its_parent_closes_stdin_during_an_open(wsclient):
    """A parent that goes away mid-open (a killed bench, a test's timeout) must not leave an
    orphan holding sockets: once the open is over the client exits."""
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead = spare.getsockname()[1]  # bound, never listening: refused
        client = await Client.start(wsclient)
        try:
            urls = [f"ws://127.0.0.1:{dead}/"] * 3
            client.send({"cmd": "open", "urls": urls, "origin": None, "concurrency": 1})
            client.proc.stdin.close()
            assert await asyncio.wait_for(client.proc.wait(), 10) == 0
        finally:
            if client.proc.returncode is None:
                client.proc.kill()
