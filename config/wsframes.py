"""One event, one WebSocket frame: encoded once per process, the same bytes written to every socket.

Over plain ASGI every socket encodes its own frame for the same text (`websocket.send`: UTF-8
encode, header, serialize) — at 10,000 sockets most of the server's CPU per event beyond the
receive loop (bench/RESULTS.md §12, issue 16). A server that offers the `websocket.send_frame`
extension (config.wsprotocol, uvicorn) takes ASGI messages carrying the finished frame;
`send_frame_message(text)` builds that message once per distinct text and hands the same
(read-only) dict to every socket. Servers without the extension (daphne, Channels' test
communicator) get `websocket.send` as before.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode

#: The scope extension (scope["extensions"]) and the ASGI message type that uses it: a server
#: text frame already encoded (RFC 6455: FIN, opcode 1, unmasked, no extension bits) in
#: "frame", and its text in "text" for a server that cannot write it as is. A message for
#: several texts (`send_frames_message`) has their frames one after another in "frame" and
#: the texts, in order, in "texts" instead. The extension's own dict may offer "write": a
#: synchronous `write(frames: bytes) -> bool` that writes the frames now when they can go as
#: they are and otherwise writes nothing and returns False (config.wsprotocol).
SEND_FRAME = "websocket.send_frame"

#: Distinct texts whose message is kept: an event is one text for all its sockets, and a burst
#: has at most a socket's inbox capacity in flight. A text not (or no longer) kept is encoded
#: again: slower, never wrong.
CACHE_SIZE = 1024

#: Texts longer than this are encoded on each use and not kept, so the cache holds at most
#: CACHE_SIZE × this (and the frames) however large one burst's payloads were.
CACHE_MAX_TEXT = 16 * 1024

_cache: dict[str, dict] = {}


def encode_text_frame(text: str) -> bytes:
    """The unmasked, unfragmented, uncompressed server frame carrying `text` (RFC 6455 §5.2),
    as `websockets` (uvicorn's protocol core) serializes it."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def send_frame_message(text: str) -> dict:
    """The `websocket.send_frame` message for `text`, built once while it is in use (read-only)."""
    message = _cache.get(text)
    if message is None:
        if len(text) > CACHE_MAX_TEXT:
            return {"type": SEND_FRAME, "frame": encode_text_frame(text), "text": text}
        if len(_cache) >= CACHE_SIZE:
            del _cache[next(iter(_cache))]  # the oldest
        message = _cache[text] = {
            "type": SEND_FRAME,
            "frame": encode_text_frame(text),
            "text": text,
        }
    return message


def encoded_frames(texts: list[str]) -> bytes:
    """The frames of `texts`, in order, as one write (each encoded once per process)."""
    if len(texts) == 1:
        return send_frame_message(texts[0])["frame"]
    return b"".join([send_frame_message(text)["frame"] for text in texts])


def send_frames_message(texts: list[str]) -> dict:
    """The `websocket.send_frame` message for `texts` in order: one write of all their frames
    on the fast path (a burst costs one syscall per socket, not one per event); "texts" for
    the fallback, which sends each as `websocket.send`."""
    if len(texts) == 1:
        return send_frame_message(texts[0])
    return {"type": SEND_FRAME, "frame": encoded_frames(texts), "texts": list(texts)}
