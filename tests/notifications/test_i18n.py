"""One event, every language: the toast each recipient sees is in their own language.

The catalog renders an event's title and message in every language of settings.LANGUAGES when
the event is built (`Event.translations`); the frame carries `title` / `message` (English)
plus `titles` / `messages` ({"sw": ..., "fr": ...}), so the consumers forward one frame as is
and each page shows its own language. The page's pick is proven in a real browser
(tests/browser/test_i18n.py); here: the frame each socket gets, the store, the inbox.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import translation

from notifications.events import relay as publisher
from notifications.events.broadcast import broadcast
from notifications.events.catalog import (
    CATALOG,
    DataLimitWarning,
    HotspotUserCutOff,
    PaymentCompleted,
    SystemNotification,
)
from tests.factories import HotspotUserFactory, PaymentFactory, TenantStaffFactory
from tests.notifications.wsutil import committed_db, connect_user, drain

SW_TITLE = "Malipo Yamepokelewa"


def sample(event_type):
    """A payload of `event_type` with a value in every field (for rendering its template)."""
    return {name: 7 if name == "percent" else f"<{name}>" for name in event_type.fields}


def test_every_catalog_event_has_a_swahili_title_and_message(db):
    for name, event_type in CATALOG.items():
        text = event_type.translate(sample(event_type))["sw"]
        with translation.override("en"):
            english = event_type.build(sample(event_type))
        assert text["title"] != english.title, f"{name}: title not translated"
        assert text["message"] != english.message, f"{name}: message not translated"
        # every value of the payload the English message shows is in the Swahili one too
        for field, value in sample(event_type).items():
            if str(value) in english.message and field != "reason_text":
                assert str(value) in text["message"], (name, field)


def test_english_stays_the_default_whatever_language_is_active(db):
    payment = PaymentFactory(status="completed")
    with translation.override("sw"):
        event = PaymentCompleted.from_payment(payment)
    assert event.title == "Payment Received"
    assert event.message.startswith(f"Payment {payment.provider_reference} of ")
    assert event.translations["sw"]["title"] == SW_TITLE
    assert "yamepokelewa" in event.translations["sw"]["message"]
    assert event.translations["fr"]["title"] == "Paiement reçu"


def test_a_payload_word_is_translated_with_the_message(db):
    hotspot_user = HotspotUserFactory()
    event = HotspotUserCutOff.from_hotspot_user(hotspot_user, reason="data")
    assert event.message.endswith("has been cut off: data used up.")
    assert event.translations["sw"]["message"].endswith("amekatwa: data imekwisha.")
    assert event.data["reason_text"] == "data used up"  # the payload stays as declared
    warning = DataLimitWarning.from_hotspot_user(hotspot_user, percent=80)
    assert "asilimia 80" in warning.translations["sw"]["message"]


def test_a_hand_written_message_stays_as_written_in_every_language(db):
    event = SystemNotification.create(message="Deploy finished")
    assert event.message == "Deploy finished"
    assert event.translations["sw"] == {"title": "Arifa ya Mfumo", "message": "Deploy finished"}
    assert SystemNotification.create(title="T", message="M").translations == {}


@committed_db
@pytest.mark.usefixtures("fresh_layer")
async def test_one_event_reaches_a_swahili_and_an_english_user_each_in_their_language(tenant):
    """The same frame to both sockets (no work per socket); each page shows its language."""
    swahili, english = await database_sync_to_async(
        lambda: (
            TenantStaffFactory(tenant=tenant, username="juma", language="sw"),
            TenantStaffFactory(tenant=tenant, username="jane", language="en"),
        )
    )()
    sw_socket, _ = await connect_user(swahili)
    en_socket, _ = await connect_user(english)

    def fire() -> None:
        payment = PaymentFactory(tenant=tenant, status="completed")
        broadcast(PaymentCompleted.from_payment(payment), exclude=None)

    await database_sync_to_async(fire)()
    await publisher.publish_pending()
    [sw_frame] = [f for f in await drain(sw_socket, 1) if f["type"] == "event"]
    [en_frame] = [f for f in await drain(en_socket, 1) if f["type"] == "event"]
    assert sw_frame == en_frame
    # the fields every client already reads are unchanged (English)...
    assert en_frame["title"] == "Payment Received"
    assert "has been received" in en_frame["message"]
    # ...and the Swahili user's page finds its own words beside them
    assert sw_frame["titles"]["sw"] == SW_TITLE
    assert "yamepokelewa" in sw_frame["messages"]["sw"]
    assert set(sw_frame["messages"]) == {"sw", "fr"}
    await sw_socket.disconnect()
    await en_socket.disconnect()


def test_the_inbox_shows_each_reader_their_language(tenant):
    reader = TenantStaffFactory(tenant=tenant, language="sw")
    broadcast(PaymentCompleted.from_payment(PaymentFactory(tenant=tenant, status="completed")))
    client = Client()
    client.force_login(reader)
    html = client.get("/notifications/").content.decode()
    assert SW_TITLE in html and "Payment Received" not in html
