"""Request-scoped state the broadcast needs: the socket that caused a change (toOthers).

`SocketIdMiddleware` sets `current_socket_id` from the `X-Socket-ID` header; `broadcast()`
stores it as the event's `exclude`, so the tab that made the change does not get its own toast
while every other socket of the group does. Code outside a request (a consumer acting for a
socket, a test) uses `excluding_socket()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from notifications.realtime.protocol import clean_socket_id

current_socket_id: ContextVar[str | None] = ContextVar("current_socket_id", default=None)


@contextmanager
def excluding_socket(socket_id: str | None) -> Iterator[None]:
    """Events broadcast inside this block skip `socket_id` (if well-formed)."""
    token = current_socket_id.set(clean_socket_id(socket_id))
    try:
        yield
    finally:
        current_socket_id.reset(token)
