"""Helpers for WebSocket tests: connect through the real ASGI stack, build layer messages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application

PATH = "/ws/notifications/"
ORIGIN = "http://127.0.0.1:8000"


@database_sync_to_async
def session_cookie(user: Any) -> str:
    """A real Django session for `user` (as after signing in); returns the cookie value."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@database_sync_to_async
def access_token(user: Any) -> str:
    return str(AccessToken.for_user(user))


def communicator(
    *,
    cookie: str | None = None,
    token: str | None = None,
    query_token: str | None = None,
    origin: str | None = ORIGIN,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> WebsocketCommunicator:
    hdrs = list(headers or [])
    if origin is not None:
        hdrs.append((b"origin", origin.encode()))
        if not any(name == b"host" for name, _ in hdrs):  # a browser's page of this site
            hdrs.append((b"host", urlsplit(ORIGIN).netloc.encode()))
    if cookie is not None:
        hdrs.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    if token is not None:
        hdrs.append((b"authorization", f"Bearer {token}".encode()))
    path = PATH if query_token is None else f"{PATH}?token={query_token}"
    return WebsocketCommunicator(application, path, headers=hdrs)


async def connect_user(user: Any, *, via: str = "session") -> tuple[WebsocketCommunicator, dict]:
    """Open an authenticated socket for `user`; returns it and its welcome frame."""
    if via == "session":
        comm = communicator(cookie=await session_cookie(user))
    elif via == "header":
        comm = communicator(token=await access_token(user))
    else:
        comm = communicator(query_token=await access_token(user))
    connected, _ = await comm.connect(timeout=3)
    assert connected
    welcome = await comm.receive_json_from(timeout=3)
    assert welcome["type"] == "welcome", welcome
    return comm, welcome


async def expect_close(comm: WebsocketCommunicator, code: int, timeout: float = 2) -> dict:
    """Skip data frames until the server closes; assert the close code."""
    while True:
        message = await comm.receive_output(timeout)
        if message["type"] == "websocket.close":
            assert message.get("code") == code, message
            return message


async def still_open(comm: WebsocketCommunicator) -> None:
    """The socket answers a ping (domain events that arrive meanwhile are skipped)."""
    await comm.send_json_to({"action": "ping"})
    while (frame := await comm.receive_json_from(timeout=2))["type"] == "event":
        pass
    assert frame == {"type": "pong"}


async def drain(comm: WebsocketCommunicator, wait: float = 0.3) -> list[dict]:
    """Every frame that arrives within `wait` seconds of quiet."""
    frames = []
    while not await comm.receive_nothing(timeout=wait):
        frames.append(await comm.receive_json_from())
    return frames


def event_message(
    group: str,
    event_id: int,
    *,
    name: str = "SystemNotification",
    roles: list[str] | None = None,
    exclude: str | None = None,
) -> dict:
    """A `notify.event` layer message as the publisher sends it (frame serialized once)."""
    frame = {
        "type": "event",
        "id": str(event_id),
        "event": name,
        "category": "system",
        "level": "info",
        "title": "Test",
        "message": f"event {event_id} for {group}",
        "channel": group,
        "data": {},
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    return {
        "type": "notify.event",
        "id": event_id,
        "text": json.dumps(frame),
        "roles": roles,
        "exclude": exclude,
    }


async def group_send(group: str, message: dict) -> None:
    await get_channel_layer().group_send(group, message)


# Socket tests need committed rows: the consumer reads them from another thread or process.
committed_db = pytest.mark.django_db(transaction=True)
