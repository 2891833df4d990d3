"""A Swahili user and an English one in real browsers: the same event, each in their language.

The issue's "done when": a Swahili user sees the dashboard and a toast in Swahili, with times
in Africa/Nairobi (TIME_ZONE) even on a device set to UTC; beside them an English user gets
the same event in English. The event is fired from another process (manage.py shell), as a
payment callback handled by another worker would be.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser.live import PASSWORD, sign_in, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

NAIROBI = ZoneInfo("Africa/Nairobi")

SWAHILI_USER = f"""
from accounts.models import User
from accounts.services import user_create, user_set_language
from tenants.models import Tenant
if not User.objects.filter(username="acme-juma").exists():
    user = user_create(username="acme-juma", password={PASSWORD!r}, role="staff",
                       tenant=Tenant.objects.get(slug="acme"), first_name="Juma",
                       last_name="Omari", by=None)
    user_set_language(user=user, language="sw")
"""

FIRE_PAYMENT = """
from notifications.events.broadcast import broadcast
from notifications.events.catalog import PaymentCompleted
from payments.models import Payment
payment = Payment.objects.filter(tenant__slug="acme", status="completed").first()
broadcast(PaymentCompleted.from_payment(payment))
print("REFERENCE", payment.provider_reference)
"""


@pytest.fixture
def utc_page(browser, server):
    """page(username) in its own context, on a device whose clock says UTC, in English."""
    contexts = []

    def make(username: str):
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, timezone_id="UTC", locale="en-US"
        )
        contexts.append(context)
        return sign_in(context.new_page(), server, username)

    yield make
    for context in contexts:
        context.close()


def hh_mm(text: str) -> str:
    hours, minutes = re.search(r"(\d{1,2}):(\d{2})", text).groups()
    return f"{int(hours)}:{minutes}"


def test_a_swahili_user_sees_the_dashboard_and_a_toast_in_swahili_in_nairobi_time(server, utc_page):
    server.manage("shell", "-c", SWAHILI_USER)
    juma = utc_page("acme-juma")  # a browser that asks for English: his choice wins
    jane = utc_page("acme-admin2")  # no choice: her browser's English

    assert juma.evaluate("document.documentElement.lang") == "sw"
    assert jane.evaluate("document.documentElement.lang") == "en"
    dashboard = juma.locator("main").inner_text()
    for words in ("Walio mtandaoni sasa", "Shughuli za karibuni", "Malipo ya leo"):
        assert words in dashboard
    assert juma.locator("#main-nav").get_by_text("Dashibodi").is_visible()
    assert juma.locator("#connection-indicator .label").inner_text() == "Moja kwa moja"

    output = server.manage("shell", "-c", FIRE_PAYMENT)
    reference = re.search(r"REFERENCE (\S+)", output).group(1)
    fired_at = datetime.now(NAIROBI)

    sw_toast = juma.locator('#toast-stack .app-toast[data-event="PaymentCompleted"]').first
    en_toast = jane.locator('#toast-stack .app-toast[data-event="PaymentCompleted"]').first
    sw_toast.wait_for(state="visible", timeout=15_000)
    en_toast.wait_for(state="visible", timeout=15_000)
    assert sw_toast.locator(".toast-title").inner_text() == "Malipo Yamepokelewa"
    assert re.fullmatch(
        rf"Malipo {reference} ya KES [\d.]+ kutoka \S+ yamepokelewa\.",
        sw_toast.locator(".toast-message").inner_text(),
    )
    assert en_toast.locator(".toast-title").inner_text() == "Payment Received"
    assert "has been received" in en_toast.locator(".toast-message").inner_text()

    # The dashboard's live feed writes the event's time in Nairobi, not in the device's UTC.
    wait_for(juma, "document.querySelector('#recent-activity li[data-event=PaymentCompleted]')")
    item = juma.locator("#recent-activity li[data-event=PaymentCompleted]").first
    assert item.locator("strong").inner_text() == "Malipo Yamepokelewa"
    shown = hh_mm(item.locator("small").inner_text())
    nairobi_minutes = {
        f"{(fired_at + timedelta(minutes=d)).hour}:{(fired_at + timedelta(minutes=d)):%M}"
        for d in (-1, 0, 1)
    }
    assert shown in nairobi_minutes, (shown, nairobi_minutes)
    assert juma.evaluate("new Date().getTimezoneOffset()") == 0  # the device really is on UTC
