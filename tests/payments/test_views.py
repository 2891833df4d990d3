"""The payments page: own tenant only, status filter, phones masked."""

from __future__ import annotations

import pytest

from payments.models import Payment
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def test_payments_list_filters_and_masks(client, staff, tenant, other_tenant):
    PaymentFactory(package__tenant=tenant, provider_reference="REF-PENDING")
    done = PaymentFactory(package__tenant=tenant, provider_reference="REF-DONE")
    Payment.objects.filter(pk=done.pk).update(status="completed")
    PaymentFactory(package__tenant=other_tenant, provider_reference="REF-OTHER")
    client.force_login(staff)
    html = client.get("/payments/").content.decode()
    assert "REF-PENDING" in html and "REF-DONE" in html and "REF-OTHER" not in html
    assert "2547****678" in html and "254712345678" not in html
    html = client.get("/payments/", {"status": "completed"}).content.decode()
    assert "REF-DONE" in html and "REF-PENDING" not in html


def test_unknown_status_filter_shows_all(client, staff, tenant):
    PaymentFactory(package__tenant=tenant, provider_reference="REF-1")
    client.force_login(staff)
    response = client.get("/payments/", {"status": "<script>"})
    assert response.status_code == 200 and "REF-1" in response.content.decode()
    assert "<script>" not in response.content.decode().split("<main")[1]


def test_payments_search_by_reference(client, staff, tenant):
    PaymentFactory(package__tenant=tenant, provider_reference="REF-AAA")
    PaymentFactory(package__tenant=tenant, provider_reference="REF-BBB")
    client.force_login(staff)
    html = client.get("/payments/", {"q": "aaa"}).content.decode()
    assert "REF-AAA" in html and "REF-BBB" not in html
