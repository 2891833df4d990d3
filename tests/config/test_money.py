"""Money is written in one place (config.money): the currency's decimals, thousands grouped,
the ISO code first; pages, toasts, the portal and the SMS all say it the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.template import Context, Template

from config.money import CURRENCIES, format_money
from notifications.events.catalog import PaymentCompleted, PaymentFailed, PaymentInitiated
from payments.sms import credentials_message
from tests.factories import HotspotUserFactory, PackageFactory, PaymentFactory, TenantFactory


@pytest.mark.parametrize(
    "amount, currency, written",
    [
        (Decimal("1500"), "NGN", "NGN 1,500.00"),
        ("50.00", "KES", "KES 50.00"),
        (Decimal("5000.40"), "UGX", "UGX 5,000"),  # no minor unit in ISO 4217
        (Decimal("1234567.5"), "RWF", "RWF 1,234,568"),
        (Decimal("0.5"), "ZAR", "ZAR 0.50"),
        ("not a number", "KES", "KES not a number"),
    ],
)
def test_amounts_are_written_with_the_currencys_decimals(amount, currency, written):
    assert format_money(amount, currency) == written


def test_the_list_has_the_regions_currencies():
    assert {"KES", "UGX", "TZS", "RWF", "NGN", "GHS", "ZAR", "USD", "EUR"} <= set(CURRENCIES)
    assert all(len(code) == 3 and code.isupper() for code in CURRENCIES)


def test_the_template_filter_is_the_same_function():
    html = Template("{{ amount|money:currency }}").render(
        Context({"amount": Decimal("1500"), "currency": "NGN"})
    )
    assert html == "NGN 1,500.00"


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", [PaymentInitiated, PaymentCompleted, PaymentFailed])
def test_payment_toasts_say_the_amount_in_the_tenants_currency(event_type):
    tenant = TenantFactory(currency="NGN")
    payment = PaymentFactory(package=PackageFactory(tenant=tenant, price=Decimal("1500.00")))
    event = event_type.from_payment(payment)
    assert "NGN 1,500.00" in event.message
    assert event.data["amount"] == "1500.00" and event.data["currency"] == "NGN"


@pytest.mark.django_db
def test_the_portal_prices_packages_in_the_tenants_currency(client):
    tenant = TenantFactory(slug="naija", currency="NGN", time_zone="Africa/Lagos")
    PackageFactory(tenant=tenant, price=Decimal("1500.00"), name="Day pass")
    page = client.get("/portal/naija/").content.decode()
    assert "NGN 1,500.00" in page and "KES" not in page
    assert 'data-time-zone="Africa/Lagos"' in page  # the tenant's zone, for portal.js


@pytest.mark.django_db
def test_the_customers_sms_gives_the_expiry_in_the_tenants_zone():
    tenant = TenantFactory(time_zone="Africa/Lagos")
    payment = PaymentFactory(package=PackageFactory(tenant=tenant))
    start = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
    user = HotspotUserFactory(
        package=payment.package, starts_at=start, expires_at=start + timedelta(hours=1)
    )
    assert "valid until 2026-12-01 23:30." in credentials_message(
        payment=payment, hotspot_user=user
    )
