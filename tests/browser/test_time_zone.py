"""A tenant in Africa/Lagos billing in NGN, in a real browser whose own zone is Asia/Tokyo: a
sale made elsewhere appears on /payments/ with its time in Lagos and its amount in naira, the
count under the list goes up with it, and the toast says NGN and shows Lagos's time.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser.live import PASSWORD, sign_in, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]

WAIT = 30_000
LAGOS = ZoneInfo("Africa/Lagos")
TOKYO = ZoneInfo("Asia/Tokyo")

SETUP = f"""
from decimal import Decimal
from accounts.models import User
from accounts.services import user_create
from hotspot.services import package_create
from tenants.models import Tenant
from tenants.services import tenant_create
if not Tenant.objects.filter(slug="lagos").exists():
    t = tenant_create(name="Lagos WiFi", slug="lagos", contact_email="ops@lagos.example",
                      by=None, time_zone="Africa/Lagos", currency="NGN")
    user_create(username="lagos-admin", password={PASSWORD!r}, role="tenant_admin", tenant=t,
                by=None)
    package_create(tenant=t, name="Naija day", price=Decimal("1500"), duration_minutes=1440,
                   by=None)
"""

SALE = """
import json
from hotspot.models import Package
from payments.services import payment_record_cash
from tenants.models import Tenant
from accounts.models import User
t = Tenant.objects.get(slug="lagos")
payment, _ = payment_record_cash(tenant=t, package=Package.objects.get(tenant=t),
                                 by=User.objects.get(username="lagos-admin"))
print(json.dumps({"id": payment.pk, "created_at": payment.created_at.isoformat()}))
"""


@pytest.fixture
def tokyo_page(browser, server):
    server.manage("shell", "-c", SETUP)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Asia/Tokyo")
    page = context.new_page()
    yield page
    context.close()


def count_text(page) -> str:
    return page.text_content("[data-page-count]").strip()


def test_a_lagos_sale_shows_lagos_time_naira_and_the_count_follows(tokyo_page, server):
    page = tokyo_page
    sign_in(page, server, "lagos-admin")
    page.goto(f"{server.url}/payments/")
    wait_for(page, "window.notifications.isConnected()", timeout=WAIT)
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "Asia/Tokyo"
    assert page.get_attribute("body", "data-time-zone") == "Africa/Lagos"
    before = int(page.get_attribute("[data-page-count]", "data-total"))
    page.evaluate("window.__sameDocument = true")

    sale = json.loads(server.manage("shell", "-c", SALE).strip().splitlines()[-1])
    row = f'tbody[data-live-rows] tr[data-row-id="{sale["id"]}"]'
    wait_for(page, f"!!document.querySelector('{row}')", timeout=WAIT)
    created = datetime.fromisoformat(sale["created_at"])
    text = page.text_content(row)
    assert "NGN 1,500.00" in text
    assert f"{created.astimezone(LAGOS):%Y-%m-%d %H:%M}" in text
    # The count under the list counts the new row (no reload).
    wait_for(
        page,
        f"document.querySelector('[data-page-count]').dataset.total === '{before + 1}'",
        timeout=WAIT,
    )
    n = before + 1
    assert count_text(page) == f"1–{min(n, 25)} of {n} payments"

    toast = page.locator('#toast-stack .app-toast[data-event="PaymentCompleted"]').last
    toast.wait_for(timeout=WAIT)
    assert "NGN 1,500.00" in toast.locator(".toast-message").text_content()
    when = toast.locator(".toast-time")
    at = datetime.fromisoformat(when.get_attribute("datetime").replace("Z", "+00:00"))
    assert when.text_content() == f"{at.astimezone(LAGOS):%H:%M}"
    assert when.text_content() != f"{at.astimezone(TOKYO):%H:%M}"  # not the browser's zone
    assert page.evaluate("window.__sameDocument") is True


START = """
import json
from hotspot.models import Package
from payments.services import payment_initiate
from tenants.models import Tenant
acme = Tenant.objects.get(slug="acme")
package = Package.objects.filter(tenant=acme, is_active=True).order_by("price").first()
payment = payment_initiate(tenant=acme, package=package, phone="254733000222")
print(json.dumps({"reference": payment.provider_reference, "amount": str(payment.amount)}))
"""

FINISH = """
from decimal import Decimal
from payments.services import payment_record_callback
payment_record_callback(provider_reference={reference!r}, succeeded=True,
                        amount=Decimal({amount!r}), raw={{"demo": True}})
"""


def total(page) -> int:
    return int(page.get_attribute("[data-page-count]", "data-total"))


def test_counts_follow_rows_in_and_out_of_each_lists_filter(new_page, server):
    """A payment starts (the pending list counts one more) and completes (it leaves the
    pending list, whose count goes back; the hotspot-user list counts its new user)."""
    pending = new_page("acme-admin")
    pending.goto(f"{server.url}/payments/?status=pending")
    users = new_page("acme-staff")
    users.goto(f"{server.url}/hotspot-users/")
    for page in (pending, users):
        wait_for(page, "window.notifications.isConnected()", timeout=WAIT)
    pending_before, users_before = total(pending), total(users)

    started = json.loads(server.manage("shell", "-c", START).strip().splitlines()[-1])
    wait_for(
        pending,
        f"document.querySelector('[data-page-count]').dataset.total === '{pending_before + 1}'",
        timeout=WAIT,
    )
    server.manage("shell", "-c", FINISH.format(**started))
    wait_for(
        pending,
        f"document.querySelector('[data-page-count]').dataset.total === '{pending_before}'",
        timeout=WAIT,
    )
    assert started["reference"] not in pending.text_content("tbody[data-live-rows]")
    wait_for(
        users,
        f"document.querySelector('[data-page-count]').dataset.total === '{users_before + 1}'",
        timeout=WAIT,
    )
    shown = users.locator("tbody[data-live-rows] tr[data-row-id]").count()
    n = users_before + 1
    assert users.text_content("[data-page-count]").strip() == f"1–{shown} of {n} hotspot users"
