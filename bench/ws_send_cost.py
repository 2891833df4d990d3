#!/usr/bin/env python
"""What one event frame costs the server per socket, in-process (no network, no event loop).

    python bench/ws_send_cost.py [--sockets 10000] [--rounds 5]

Builds `--sockets` server connections of `websockets`' sans-I/O `ServerProtocol` (what uvicorn's
`websockets-sansio` runs per socket) with uvicorn's permessage-deflate settings, handshaken as a
browser does (it offers permessage-deflate) or as a client that offers nothing, and sends one
notification-sized JSON frame to each, as a fan-out does:

- `deflate`: permessage-deflate negotiated (uvicorn's default, `--ws-per-message-deflate true`,
  and every browser): each socket compresses the frame with its own zlib context;
- `plain`: no extension (`--ws-per-message-deflate false`): each socket still frames and
  encodes the text itself (`send_text`);
- `shared`: the frame encoded once (config.wsframes.encode_text_frame) and the same bytes
  handed to every socket: what the `websocket.send_frame` fast path leaves per socket.

Prints CPU µs per socket per frame (best of `--rounds`), the frame's bytes on the wire and the
memory each connection holds after its first frame (tracemalloc; zlib's state included), then
ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.datastructures import Headers  # noqa: E402
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory  # noqa: E402
from websockets.http11 import Request  # noqa: E402
from websockets.server import ServerProtocol  # noqa: E402

from config.wsframes import encode_text_frame  # noqa: E402


# The shape of a notification frame (docs/protocol.md "event"), ~300 bytes of JSON.
def frame_text(event_id: int) -> str:
    return json.dumps(
        {
            "type": "event",
            "id": event_id,
            "channel": "tenant-42",
            "event": "voucher.redeemed",
            "data": {
                "voucher": f"AB12-CD34-{event_id:04X}",
                "plan": "Daily 1 GB",
                "price": "50.00",
                "currency": "KES",
                "by": "staff-7",
                "at": "2026-12-01T21:30:00+03:00",
            },
            "at": "2026-12-01T18:30:00.123456+00:00",
        },
        separators=(",", ":"),
    )


FRAME = frame_text(123456)


def connection(deflate_offered: bool) -> ServerProtocol:
    """A server connection after the handshake, with uvicorn's extension settings."""
    conn = ServerProtocol(
        extensions=[
            ServerPerMessageDeflateFactory(
                server_max_window_bits=12,
                client_max_window_bits=12,
                compress_settings={"memLevel": 5},
            )
        ]
    )
    headers = Headers(
        Host="127.0.0.1",
        Upgrade="websocket",
        Connection="Upgrade",
        **{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"},
    )
    if deflate_offered:  # what Chrome and Firefox send
        headers["Sec-WebSocket-Extensions"] = "permessage-deflate; client_max_window_bits"
    response = conn.accept(Request("/ws/notifications/", headers))
    conn.send_response(response)
    conn.data_to_send()
    return conn


def per_socket_us(conns: list[ServerProtocol], mode: str, text: str) -> tuple[float, int]:
    """One event (`text`) to every connection: CPU µs per socket, the frame's size on the wire."""
    start = time.process_time()
    size = 0
    if mode == "shared":
        frame = encode_text_frame(text)
        out = []
        for _ in conns:
            out.append(frame)  # the transport write is the same for every mode; not timed
        size = len(frame)
    else:
        for conn in conns:
            conn.send_text(text.encode())
            data = b"".join(conn.data_to_send())
        size = len(data)
    return (time.process_time() - start) / len(conns) * 1e6, size


def kib_per_connection(deflate_offered: bool, n: int = 500) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    conns = [connection(deflate_offered) for _ in range(n)]
    for conn in conns:
        conn.send_text(FRAME.encode())
        conn.data_to_send()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del conns
    return held / n / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    result: dict = {"sockets": args.sockets, "frame_text_bytes": len(FRAME)}
    for mode, offered in (("deflate", True), ("plain", False), ("shared", False)):
        conns = [connection(offered) for _ in range(args.sockets)]
        negotiated = bool(conns[0].extensions)
        # Each round another event (its own id and voucher), as a fan-out sends them.
        runs = [per_socket_us(conns, mode, frame_text(1000 + i)) for i in range(args.rounds)]
        us = min(r[0] for r in runs)
        result[mode] = {
            "us_per_socket": round(us, 2),
            "ms_per_event": round(us * args.sockets / 1000, 1),
            "wire_bytes_first": runs[0][1],
            "wire_bytes_later": runs[-1][1],
            "extension_negotiated": negotiated,
        }
        if mode != "shared":
            result[mode]["kib_per_connection"] = round(kib_per_connection(offered), 1)
        print(f"{mode:8} {us:7.2f} µs/socket  {result[mode]}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
