"""Hypothesis strategies of client frames for the socket fuzzers, and what each endpoint may answer.

The strategies cover every action of docs/protocol.md and every event of docs/pusher.md with
each field given values of every JSON type, plus arbitrary JSON, non-JSON text, binary frames,
deep nesting, huge numbers and frames over the size limits. `sample()` draws a fixed list of
them (derandomized: the same frames on every run, so a failure reproduces; WS_FUZZ_RANDOM=1
draws new ones, WS_FUZZ_EXAMPLES sets how many).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

RANDOM = os.environ.get("WS_FUZZ_RANDOM", "") == "1"

Frame = str | bytes


#: Frames every run sends whatever is drawn (the issue's cases): deep nesting of both kinds past
#: the parser's recursion limit, an int past Python's digit limit, binary, empty, over-size.
ALWAYS: list[str | bytes] = [
    "[" * 2000 + "]" * 2000,
    '{"a":' * 1500 + "1" + "}" * 1500,
    '{"action":"resume","last_id":' + "9" * 4400 + "}",
    '{"event":"pusher:subscribe","data":"' + "[" * 2000 + '"}',
    b"\x00\xff",
    b"",
    "",
    "x" * 20_000,
]


def sample(strategy: st.SearchStrategy, count: int) -> list[Any]:
    """`count` draws of `strategy` (fewer if it has fewer distinct values), then ALWAYS."""
    drawn: list[Any] = []

    @hsettings(
        max_examples=count,
        database=None,
        derandomize=not RANDOM,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn + ALWAYS


# -- values -----------------------------------------------------------------------------------

huge_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([2**63, 2**63 - 1, -1, -(2**63), 2**64, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), huge_numbers, st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


deep_text = st.builds(
    nested, st.integers(min_value=1, max_value=5000), st.sampled_from(["array", "object"])
)
raw_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "",
            "null",
            "{",
            '{"action":',
            "9" * 5000,  # past Python's 4,300-digit int limit: a ValueError while parsing
            "1e999",
            '{"action":"ping"}' * 2,
            "NaN",
            "\x00",
        ]
    ),
    deep_text,
)
binary = st.binary(max_size=300)


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def with_extras(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with some fields replaced by values of any type, and unknown fields added."""
    return st.builds(
        lambda wrong, extra: {**base, **extra, **wrong},
        st.dictionaries(st.sampled_from(sorted(base)), json_values, max_size=len(base)),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    )


def framed(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[Frame]:
    """JSON text of `objects`, mixed with raw text, binary and over-size frames."""
    return st.one_of(
        objects.map(dumps),
        objects.map(dumps),
        objects.map(dumps),
        raw_text,
        binary,
        st.builds(
            lambda pad: dumps({"action": "ping", "pad": "x" * pad}), st.sampled_from([4100, 11000])
        ),
    )


# -- /ws/notifications/ (docs/protocol.md) ---------------------------------------------------


def notification_frames(channels: list[str]) -> st.SearchStrategy[Frame]:
    """Frames of every action; `channels`: names worth trying (own, other tenants', internal)."""
    channel = st.one_of(st.sampled_from(channels), json_values, st.text(max_size=250))
    actions = st.one_of(
        with_extras({"action": "ping"}),
        st.builds(
            lambda a, c: {"action": a, "channel": c},
            st.sampled_from(["subscribe", "unsubscribe", "presence"]),
            channel,
        ),
        with_extras({"action": "subscribe", "channel": channels[0]}),
        with_extras({"action": "unsubscribe", "channel": channels[0]}),
        with_extras({"action": "presence", "channel": channels[0]}),
        with_extras({"action": "resume", "last_id": 0, "previous_socket_id": "1.2"}),
        st.builds(lambda n: {"action": "resume", "last_id": n}, huge_numbers),
        with_extras({"action": "view", "record": "user.1"}),
        st.builds(
            lambda r: {"action": "view", "record": r},
            st.one_of(
                st.sampled_from([f"user.{i}" for i in range(1, 6)] + ["tenant.1", "payment.1"]),
                json_values,
            ),
        ),
        with_extras({"action": "nope"}),
        st.builds(lambda a: {"action": a}, json_values),
        json_values,
    )
    return framed(actions)


NOTIFICATION_TYPES = {
    "pong",
    "error",
    "subscribed",
    "unsubscribed",
    "event",
    "resumed",
    "resync",
    "presence",
    "presence_counts",
    "presence_count",
    "member_added",
    "member_removed",
    "viewers",
}
NOTIFICATION_ERRORS = {
    "forbidden",
    "invalid_json",
    "invalid_frame",
    "missing_field",
    "invalid_field",
    "unknown_action",
    "binary_not_supported",
    "frame_too_large",
    "replay_limited",
}


def parsed(frame: Frame, limit: int) -> Any:
    """The JSON object the server reads from `frame`, or None where it reads none."""
    if not isinstance(frame, str) or len(frame.encode("utf-8")) > limit:
        return None
    try:
        value = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def notification_pongs(frame: Frame) -> int:
    """How many `pong` answers `frame` itself gets (a ping action gets one)."""
    value = parsed(frame, 4096)
    return int(value is not None and value.get("action") == "ping")


# -- Pusher /app/<key> (docs/pusher.md) ------------------------------------------------------


def pusher_frames(channels: list[str]) -> st.SearchStrategy[Frame]:
    channel = st.one_of(st.sampled_from(channels), json_values, st.text(max_size=250))
    auth = st.one_of(
        st.builds(lambda h: f"test-key:{h}", st.text("0123456789abcdef", min_size=64, max_size=64)),
        json_values,
    )
    subscription = st.builds(
        lambda c, a, d: {"channel": c, "auth": a, "channel_data": d},
        channel,
        auth,
        st.one_of(
            json_values,
            json_values.map(dumps),
            st.builds(lambda u: dumps({"user_id": u, "user_info": {}}), json_values),
        ),
    )
    data = st.one_of(subscription, subscription.map(dumps), json_values, st.text(max_size=50))
    events = st.one_of(
        st.builds(
            lambda e, d: {"event": e, "data": d},
            st.sampled_from(
                [
                    "pusher:ping",
                    "pusher:pong",
                    "pusher:subscribe",
                    "pusher:unsubscribe",
                    "pusher:signin",
                    "client-x",
                    "client-" + "y" * 300,
                ]
            ),
            data,
        ),
        st.builds(
            lambda e, c, d: {"event": e, "channel": c, "data": d},
            st.one_of(st.just("client-typing"), st.text(max_size=20)),
            channel,
            json_values,
        ),
        with_extras({"event": "pusher:subscribe", "data": {"channel": channels[0]}}),
        with_extras({"event": "pusher:ping", "data": {}}),
        st.builds(lambda e: {"event": e}, json_values),
        json_values,
    )
    return framed(events)


PUSHER_EVENTS = {
    "pusher:pong",
    "pusher:error",
    "pusher:subscription_error",
    "pusher_internal:subscription_succeeded",
}
PUSHER_ERRORS = {4300, 4301, 4200}


def pusher_pongs(frame: Frame) -> int:
    value = parsed(frame, 10_240)
    return int(value is not None and value.get("event") == "pusher:ping")


# -- /ws/portal/ -----------------------------------------------------------------------------


def portal_frames() -> st.SearchStrategy[Frame]:
    objects = st.one_of(
        with_extras({"type": "ping"}),
        st.builds(lambda t: {"type": t}, json_values),
        with_extras({"action": "subscribe", "channel": "payment.1"}),
        json_values,
    )
    return framed(objects)


PORTAL_TYPES = {"pong", "error", "payment"}
PORTAL_ERRORS = {"bad_frame", "bad_json", "not_allowed"}


def portal_pongs(frame: Frame) -> int:
    value = parsed(frame, 4096)
    return int(value is not None and value.get("type") == "ping")
