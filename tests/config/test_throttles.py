"""Throttles of the pages (/admin/login/, /register/) and what every throttle does with Redis down.

Per endpoint, when the cache cannot count (config/throttling.py, docs/security.md): the payment
callback and API writes fail open (a payment is never lost); sign-in and registration fail
closed (503 + Retry-After) instead of becoming unlimited. Tested against a Redis server this
test starts on a free port of its own and stops; the shared one is never touched.
"""

import json
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from payments.api import signature_for
from tests.factories import DEFAULT_PASSWORD, PackageFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def rates(**changed):
    return {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **changed},
    }


@override_settings(REST_FRAMEWORK=rates(admin_login="3/min"))
def test_admin_login_is_throttled_per_address(system_admin):
    client = Client(REMOTE_ADDR="198.51.100.3")
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "x", "password": "y"})
        assert response.status_code == 200  # the form again, with its error
    refused = client.post("/admin/login/", {"username": "root-admin", "password": DEFAULT_PASSWORD})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/login/").status_code == 200  # the page itself still shows
    other = Client(REMOTE_ADDR="198.51.100.4")
    response = other.post("/admin/login/", {"username": "root-admin", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302


@override_settings(REST_FRAMEWORK=rates(register="2/min"))
def test_registration_is_throttled_per_address(db, signal_log):
    from tenants.models import Tenant

    def register(n, address="198.51.100.5"):
        return Client(REMOTE_ADDR=address).post(
            "/register/",
            {
                "name": f"Flood {n}",
                "slug": f"flood-{n}",
                "contact_email": f"f{n}@example.com",
                "contact_phone": "254712345678",
                "admin_username": f"flood{n}",
                "admin_password": "Correct-Horse-9",
                "admin_password_confirm": "Correct-Horse-9",
                "admin_first_name": "F",
                "admin_last_name": "L",
            },
        )

    assert [register(n).status_code for n in range(2)] == [302, 302]
    refused = register(2)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert not Tenant.objects.filter(slug="flood-2").exists()
    assert register(3, address="198.51.100.6").status_code == 302
    assert Tenant.objects.filter(slug__startswith="flood-").count() == 3


@pytest.fixture
def cache_on_own_redis(own_redis):
    cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
            "KEY_PREFIX": f"outage-{uuid.uuid4().hex[:8]}",
        }
    }
    with override_settings(CACHES=cache):
        yield own_redis


def callback(payment, tenant):
    body = json.dumps(
        {"reference": payment.provider_reference, "status": "completed", "amount": "50.00"}
    ).encode()
    return APIClient(REMOTE_ADDR="198.51.100.9").post(
        "/api/payments/callback/",
        data=body,
        content_type="application/json",
        HTTP_X_SIGNATURE=signature_for(tenant.payment_secret, body),
    )


def test_with_redis_down_each_endpoint_fails_the_way_it_was_decided(
    cache_on_own_redis, tenant, staff, system_admin
):
    package = PackageFactory(tenant=tenant, price=Decimal("50.00"))
    before = PaymentFactory(package=package, provider_reference="PAYUP0001")
    during = PaymentFactory(package=package, provider_reference="PAYDOWN0001")
    api = APIClient(REMOTE_ADDR="198.51.100.8")
    credentials = {"username": "acme-staff", "password": DEFAULT_PASSWORD}
    # Up: everything answers normally (and counts in this Redis).
    assert api.post("/api/auth/token/", credentials).status_code == 200
    assert callback(before, tenant).status_code == 200

    cache_on_own_redis.stop()

    # The payment callback fails open: the payment is settled.
    response = callback(during, tenant)
    assert response.status_code == 200, response.content
    during.refresh_from_db()
    assert during.status == "completed"
    # API writes of a signed-in user fail open.
    api.force_authenticate(staff)
    assert api.patch("/api/users/me/", {"first_name": "Still"}).status_code == 200
    api.force_authenticate(None)
    # The token endpoint fails closed: 503 with Retry-After, no token.
    refused = APIClient(REMOTE_ADDR="198.51.100.8").post("/api/auth/token/", credentials)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "throttle_unavailable"
    assert int(refused["Retry-After"]) > 0
    # /admin/login/ and /register/ fail closed.
    admin = Client(REMOTE_ADDR="198.51.100.8")
    refused = admin.post("/admin/login/", {"username": "root-admin", "password": DEFAULT_PASSWORD})
    assert refused.status_code == 503 and "_auth_user_id" not in admin.session
    assert Client().post("/register/", {"name": "X"}).status_code == 503
    # The sign-in page cannot count failures: it refuses, saying so, whatever the password.
    page = Client(REMOTE_ADDR="198.51.100.8")
    response = page.post("/accounts/login/", credentials)
    assert response.status_code == 200 and "briefly unavailable" in response.content.decode()
    assert "_auth_user_id" not in page.session
