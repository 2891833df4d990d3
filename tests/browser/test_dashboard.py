"""The dashboard's "today" counters in a real browser: a page left open re-reads them at the
tenant's midnight (the server says when: data-refresh-in), when no event says the day changed."""

from __future__ import annotations

import pytest

from tests.browser.live import sign_in, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

QUIET_SALE = """
import uuid
from django.utils import timezone
from hotspot.models import Package
from payments.models import Payment
from tenants.models import Tenant
acme = Tenant.objects.get(slug="acme")
package = Package.objects.filter(tenant=acme).order_by("price").first()
Payment.objects.bulk_create([Payment(  # bulk_create: no signal, no event, nothing live
    tenant=acme, package=package, phone="254700000999", amount=package.price,
    currency=acme.currency, provider_reference=f"quiet-{uuid.uuid4().hex}",
    status="completed", completed_at=timezone.now(), provider="daraja")])
"""
PAYMENTS_TODAY = "document.querySelector('#dashboard-stats [data-stat=payments_today]')"


def test_todays_counters_are_read_again_at_the_tenants_midnight(new_page, server):
    page = new_page()
    page.clock.install()  # the page's timers on a clock the test can move on (it still flows)
    sign_in(page, server, "acme-admin")
    before = int(page.evaluate(f"{PAYMENTS_TODAY}.dataset.value"))
    refresh_in = float(page.locator("#dashboard-stats").get_attribute("data-refresh-in"))
    assert 0 < refresh_in <= 25 * 3600  # until the tenant's midnight (a DST day: 25 hours)
    # A change no event announces, as the day's end is: only a re-read can show it.
    server.manage("shell", "-c", QUIET_SALE)
    page.clock.fast_forward(int(refresh_in * 1000) + 2000)  # the page's clock past midnight
    wait_for(page, f"{PAYMENTS_TODAY}.dataset.value === '{before + 1}'", timeout=20_000)
