"""The tenant's payment callback secret on /settings/: masked, revealed and rotated by its admins
only; a rotation goes through the service, emits PaymentSecretRotated and ends the old secret."""

from __future__ import annotations

import json

import pytest

from config.errors import PermissionDenied
from notifications.models import StoredEvent
from payments.api import signature_for
from tenants import services
from tenants.models import Tenant
from tests.factories import PackageFactory, PaymentFactory

pytestmark = pytest.mark.django_db

CALLBACK = "/api/payments/callback/"


def test_admins_see_it_masked_until_they_reveal_it(client, tenant_admin, tenant):
    client.force_login(tenant_admin)
    html = client.get("/settings/").content.decode()
    assert 'id="payment-secret"' in html and 'id="payment-secret-reveal"' in html
    assert tenant.payment_secret not in html  # only the last four characters
    assert tenant.payment_secret_masked in html and tenant.payment_secret[-4:] in html
    response = client.get("/settings/payment-secret/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert response.json() == {"payment_secret": tenant.payment_secret}


def test_staff_neither_see_reveal_nor_rotate_it(client, staff, tenant):
    before = tenant.payment_secret
    client.force_login(staff)
    html = client.get("/settings/").content.decode()
    assert "payment-secret" not in html and before[-4:] not in html.split("<main")[1]
    assert client.get("/settings/payment-secret/").status_code == 403
    assert client.post("/settings/payment-secret/rotate/").status_code == 403
    assert Tenant.objects.get(pk=tenant.pk).payment_secret == before
    assert not StoredEvent.objects.filter(name="PaymentSecretRotated").exists()


def test_signed_out_gets_nothing(client, tenant):
    response = client.get("/settings/payment-secret/")
    assert response.status_code in (302, 403) and tenant.payment_secret.encode() not in (
        response.content
    )
    assert client.post("/settings/payment-secret/rotate/").status_code in (302, 403)
    assert Tenant.objects.get(pk=tenant.pk).payment_secret == tenant.payment_secret


def test_rotating_ends_the_old_secret_and_tells_the_admins(client, tenant_admin, tenant):
    old = tenant.payment_secret
    package = PackageFactory(tenant=tenant)
    payment = PaymentFactory(package=package, provider_reference="PAYROTATE01")
    client.force_login(tenant_admin)
    response = client.post("/settings/payment-secret/rotate/")
    assert response.status_code == 302 and response["Location"].startswith("/settings/")
    new = Tenant.objects.get(pk=tenant.pk).payment_secret
    assert new != old and len(new) == 64
    event = StoredEvent.objects.get(name="PaymentSecretRotated")
    assert old not in json.dumps(event.data) and new not in json.dumps(event.data)
    body = json.dumps(
        {"reference": "PAYROTATE01", "status": "completed", "amount": str(payment.amount)}
    ).encode()

    def post(secret):
        return client.post(
            CALLBACK,
            data=body,
            content_type="application/json",
            HTTP_X_SIGNATURE=signature_for(secret, body),
        )

    assert post(old).status_code == 401
    assert post(new).status_code == 200


def test_the_service_refuses_other_tenants_admins(tenant, other_admin, system_admin):
    before = tenant.payment_secret
    with pytest.raises(PermissionDenied):
        services.tenant_payment_secret_rotate(tenant=tenant, by=other_admin)
    assert Tenant.objects.get(pk=tenant.pk).payment_secret == before
    services.tenant_payment_secret_rotate(tenant=tenant, by=system_admin)
    assert Tenant.objects.get(pk=tenant.pk).payment_secret != before
