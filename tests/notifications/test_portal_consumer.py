"""`/ws/portal/?token=`: the paying customer's own socket (frames, errors, live settlement)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from payments import services
from payments.models import Payment
from tests.factories import PackageFactory, TenantFactory
from tests.notifications.wsutil import ORIGIN, committed_db, expect_close

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


def portal_socket(token: str | None, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    path = "/ws/portal/" + ("" if token is None else f"?token={token}")
    # A phone's browser on the site's own page: Origin and Host of this site.
    headers = (
        [(b"origin", origin.encode()), (b"host", urlsplit(ORIGIN).netloc.encode())]
        if origin
        else []
    )
    return WebsocketCommunicator(application, path, headers=headers)


@database_sync_to_async
def make_payment(slug: str = "acme", phone: str = "254712345678") -> Payment:
    tenant = TenantFactory(slug=slug, name=slug.title())
    package = PackageFactory(tenant=tenant, name=f"Daily {phone}", price=50)
    payment = services.payment_initiate(tenant=tenant, package=package, phone=phone)
    Payment.objects.filter(pk=payment.pk).update(provider=Payment.Provider.DARAJA)
    payment.refresh_from_db()
    return payment


@database_sync_to_async
def complete(payment: Payment) -> None:
    services.payment_complete(payment=payment)


@database_sync_to_async
def fail(payment: Payment, reason: str) -> None:
    services.payment_fail(payment=payment, reason=reason)


async def open_for(payment: Payment) -> WebsocketCommunicator:
    comm = portal_socket(payment.token)
    connected, _ = await comm.connect(timeout=3)
    assert connected
    first = await comm.receive_json_from(timeout=3)
    assert (first["type"], first["state"]) == ("payment", "pending"), first
    return comm


async def test_the_socket_sends_the_state_then_the_credentials_once_completed():
    payment = await make_payment()
    comm = await open_for(payment)
    await complete(payment)
    frame = await comm.receive_json_from(timeout=10)
    assert (frame["type"], frame["state"], frame["message"]) == (
        "payment",
        "completed",
        "Paid — you are online",
    )
    user = await database_sync_to_async(lambda: payment.hotspot_user)()
    assert frame["credentials"]["username"] == user.username
    assert frame["credentials"]["password"] == user.password
    await comm.disconnect()


async def test_a_failed_payment_sends_its_reason():
    payment = await make_payment()
    comm = await open_for(payment)
    await fail(payment, "Cancelled on the phone")
    frame = await comm.receive_json_from(timeout=10)
    assert (frame["state"], frame["reason"]) == ("failed", "Cancelled on the phone")
    assert "credentials" not in frame
    await comm.disconnect()


@pytest.mark.parametrize("token", [None, "", "x" * 32, "short"])
async def test_an_unknown_token_gets_an_error_and_is_closed(token):
    await make_payment()
    comm = portal_socket(token)
    connected, _ = await comm.connect(timeout=3)
    assert connected  # accepted, then closed with a code the browser sees
    frame = await comm.receive_json_from(timeout=3)
    assert (frame["type"], frame["code"]) == ("error", "invalid_token")
    await expect_close(comm, 4403)


async def test_a_foreign_origin_is_refused():
    payment = await make_payment()
    comm = portal_socket(payment.token, origin="http://evil.example")
    connected, _ = await comm.connect(timeout=3)
    assert not connected


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "subscribe", "channel": "tenant.1"},
        {"action": "subscribe", "channel": "payment.1"},
        {"type": "subscribe", "token": "x"},
        {"action": "resume", "last_id": 0},
        [],
        "not json",
    ],
)
async def test_any_other_frame_gets_an_error_and_changes_nothing(frame):
    payment = await make_payment()
    comm = await open_for(payment)
    if frame == "not json":
        await comm.send_to(text_data="{nope")
    else:
        await comm.send_json_to(frame)
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error" and reply["code"] in {"not_allowed", "bad_json"}
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


async def test_a_flood_of_frames_closes_the_socket(settings):
    settings.NOTIFICATIONS_WS_BURST = 3
    settings.NOTIFICATIONS_WS_RATE = 0.1
    payment = await make_payment()
    comm = await open_for(payment)
    for _ in range(6):
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
    await expect_close(comm, 4429)


async def test_a_2000_deep_array_gets_an_error_frame_and_the_socket_stays():
    payment = await make_payment(slug="deep")
    comm = await open_for(payment)
    await comm.send_to(text_data="[" * 2000 + "]" * 2000)
    reply = await comm.receive_json_from(timeout=3)
    assert (reply["type"], reply["code"]) == ("error", "bad_json")
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


async def test_the_frame_limit_counts_frames_on_arrival_not_as_they_are_handled(
    settings, monkeypatch
):
    """Frames queued behind a slow send (a peer that does not read) are counted as they come.

    Counted as they were handled, each slow answer refilled the bucket (20/s: a token every
    50 ms, two per 100 ms answer) and the 20 frames were all answered; on arrival, the fourth
    closes the socket and the frames queued behind it are never handled.
    """
    import asyncio

    from notifications.realtime.portal import PortalPaymentConsumer

    settings.NOTIFICATIONS_WS_BURST = 3
    settings.NOTIFICATIONS_WS_RATE = 20
    payment = await make_payment(slug="slowpeer")
    comm = await open_for(payment)
    plain_send = PortalPaymentConsumer.send

    async def slow_send(self, *args, **kwargs):
        await asyncio.sleep(0.1)
        await plain_send(self, *args, **kwargs)

    monkeypatch.setattr(PortalPaymentConsumer, "send", slow_send)
    for _ in range(20):
        await comm.send_to(text_data=json.dumps({"type": "ping"}))
    frames = []
    while True:
        message = await comm.receive_output(timeout=10)
        if message["type"] == "websocket.close":
            break
        frames.append(json.loads(message["text"]))
    assert message["code"] == 4429
    assert frames[-1]["code"] == "rate_limited"
    assert [f["type"] for f in frames[:-1]].count("pong") <= 3
