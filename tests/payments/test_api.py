"""/api/payments/: tenant-scoped, phones always masked, status filter; members initiate."""

import pytest

from payments.models import Payment
from tests.factories import PaymentFactory
from tests.roles import READ_TENANT_A, by_role

# Tenants A (acme: acme-admin, acme-staff) and B (beta: beta-admin) exist in every test.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_tenants")]


@pytest.fixture
def payment_a(package_a):
    return PaymentFactory(package=package_a, provider_reference="REF-A-1", phone="254712345678")


@pytest.fixture
def payment_b(package_b):
    return PaymentFactory(package=package_b, provider_reference="REF-B-1", phone="254799999999")


@pytest.mark.parametrize(
    ("role", "expected", "refs"),
    [
        ("system_admin", 200, {"REF-A-1", "REF-B-1"}),
        ("tenant_admin", 200, {"REF-A-1"}),
        ("staff", 200, {"REF-A-1"}),
        ("other_admin", 200, {"REF-B-1"}),
        ("anonymous", 401, None),
    ],
)
def test_list_payments(api_as, payment_a, payment_b, role, expected, refs):
    response = api_as(role).get("/api/payments/")
    assert response.status_code == expected
    if refs is not None:
        assert {row["provider_reference"] for row in response.json()["results"]} == refs
        text = response.content.decode()
        assert "254712345678" not in text and "254799999999" not in text


@by_role(**READ_TENANT_A)
def test_retrieve_payment_a(api_as, payment_a, role, expected):
    response = api_as(role).get(f"/api/payments/{payment_a.pk}/")
    assert response.status_code == expected
    if expected == 200:
        body = response.json()
        assert body["masked_phone"] == "2547****678"
        assert "phone" not in body and "raw_callback" not in body
        assert (body["amount"], body["status"]) == ("50.00", "pending")


def test_status_filter(api_as, payment_a, package_a):
    PaymentFactory(package=package_a, provider_reference="REF-A-2", status="completed")
    PaymentFactory(package=package_a, provider_reference="REF-A-3", status="failed")
    client = api_as("staff")
    rows = client.get("/api/payments/", {"status": "completed"}).json()["results"]
    assert [row["provider_reference"] for row in rows] == ["REF-A-2"]
    rows = client.get("/api/payments/", {"status": "pending"}).json()["results"]
    assert [row["provider_reference"] for row in rows] == ["REF-A-1"]
    response = client.get("/api/payments/", {"status": "refunded"})
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]
    bad_date = client.get("/api/payments/", {"created_after": "yesterday"})
    assert bad_date.status_code == 400
    # Offsets beyond what PostgreSQL accepts (±15:59) are converted, not a server error.
    odd_offset = client.get("/api/payments/", {"created_before": "2200-09-10T10:23:06-19:50"})
    assert odd_offset.status_code == 200
    assert len(odd_offset.json()["results"]) == 3
    assert (
        client.get("/api/payments/", {"created_after": "0001-01-01T00:00:00+10:00"}).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("system_admin", 201),
        ("tenant_admin", 201),
        ("staff", 201),
        ("other_admin", 400),  # package A is not among the packages B's admin may choose
        ("anonymous", 401),
    ],
)
def test_initiate_payment_for_package_a(api_as, package_a, role, expected):
    response = api_as(role).post(
        "/api/payments/", {"package": package_a.pk, "phone": "+254 712 345 678"}
    )
    assert response.status_code == expected
    assert Payment.objects.filter(package=package_a).count() == (expected == 201)
    if expected == 201:
        body = response.json()
        assert (body["status"], body["amount"], body["currency"]) == ("pending", "50.00", "KES")
        assert body["masked_phone"] == "2547****678"
        assert body["provider_reference"].startswith("PAY")
        assert Payment.objects.get().phone == "254712345678"


def test_initiate_bad_input(api_as, package_a, payment_a):
    client = api_as("staff")
    response = client.post("/api/payments/", {"package": package_a.pk, "phone": "abc"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["phone"]
    response = client.post(
        "/api/payments/",
        {"package": package_a.pk, "phone": "254712345678", "provider_reference": "REF-A-1"},
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["provider_reference"]
    response = client.post("/api/payments/", {"phone": "254712345678", "amount": "1"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "package": ["This field is required."],
        "amount": ["Unknown field."],
    }
    assert Payment.objects.count() == 1


def test_payments_cannot_be_changed_or_deleted_through_the_api(api_as, payment_a):
    client = api_as("tenant_admin")
    assert (
        client.patch(f"/api/payments/{payment_a.pk}/", {"status": "completed"}).status_code == 405
    )
    assert client.delete(f"/api/payments/{payment_a.pk}/").status_code == 405
    payment_a.refresh_from_db()
    assert payment_a.status == "pending"
