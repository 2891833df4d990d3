"""Payments fixtures: a Daraja stand-in over HTTP and a tenant with its Daraja account."""

from __future__ import annotations

import pytest

from payments import services
from payments.providers.daraja import clear_token_cache
from tests.payments.daraja_standin import SANDBOX_PASSKEY, DarajaStandIn


@pytest.fixture
def daraja(settings):
    """A live Daraja stand-in; MPESA_API_URL points at it for this test."""
    standin = DarajaStandIn()
    settings.MPESA_API_URL = standin.url
    settings.MPESA_HTTP_TIMEOUT = 1.0
    clear_token_cache()
    yield standin
    clear_token_cache()
    standin.close()


@pytest.fixture
def mpesa_tenant(tenant):
    """The shared tenant with the sandbox's paybill account (as seed_demo gives acme)."""
    services.daraja_credentials_set(
        tenant=tenant,
        by=None,
        shortcode="174379",
        passkey=SANDBOX_PASSKEY,
        consumer_key="demo-key",
        consumer_secret="demo-secret",
    )
    return tenant
