"""config.wsframes: the frame encoded once is exactly what `websockets` would send, per length."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from config import wsframes
from config.wsframes import SEND_FRAME, encode_text_frame, send_frame_message


def parse(data: bytes) -> Frame:
    """One frame as a client reads it (server frames are unmasked); nothing may be left over."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        assert reader.at_eof()
        return done.value
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_the_frame_is_the_one_websockets_sends_at_every_length_boundary(size):
    text = ("é" + "x" * size)[:size] if size else ""
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    frame = encode_text_frame(text)
    assert frame == expected
    parsed = parse(frame)
    assert parsed.opcode is Opcode.TEXT and parsed.fin
    assert not (parsed.rsv1 or parsed.rsv2 or parsed.rsv3)
    assert parsed.data.decode() == text


def test_one_message_per_text_shared_by_every_socket():
    text = '{"type":"event","id":1}'
    first = send_frame_message(text)
    assert first == {"type": SEND_FRAME, "frame": encode_text_frame(text), "text": text}
    assert send_frame_message(text) is first  # built once, not per socket
    assert send_frame_message('{"type":"event","id":2}') is not first


def test_the_cache_keeps_only_the_newest_texts(monkeypatch):
    monkeypatch.setattr(wsframes, "_cache", {})
    monkeypatch.setattr(wsframes, "CACHE_SIZE", 3)
    messages = [send_frame_message(f"t{n}") for n in range(4)]
    assert list(wsframes._cache) == ["t1", "t2", "t3"]
    again = send_frame_message("t0")  # evicted: built again, still correct
    assert again is not messages[0] and again == messages[0]


def test_a_long_text_is_encoded_but_not_kept(monkeypatch):
    monkeypatch.setattr(wsframes, "_cache", {})
    text = "x" * (wsframes.CACHE_MAX_TEXT + 1)
    message = send_frame_message(text)
    assert parse(message["frame"]).data.decode() == text
    assert wsframes._cache == {}  # the cache's size stays bounded by CACHE_MAX_TEXT


def test_several_texts_are_one_message_of_their_frames_in_order():
    texts = ["one", "é" * 200, "three"]
    message = wsframes.send_frames_message(texts)
    assert message["type"] == wsframes.SEND_FRAME
    assert message["frame"] == b"".join(wsframes.encode_text_frame(t) for t in texts)
    assert message["texts"] == texts  # the fallback's, in order
    assert wsframes.encoded_frames(texts) == message["frame"]
    assert wsframes.send_frames_message(["one"]) is wsframes.send_frame_message("one")
