"""POST /api/payments/callback/: HMAC-signed by the provider with the tenant's secret; idempotent;
every refusal changes nothing; every call is logged with its reference."""

import json
import logging
from decimal import Decimal

import pytest

from hotspot.models import HotspotUser
from payments.api import signature_for
from tests.concurrency import run_concurrently
from tests.factories import PackageFactory, PaymentFactory

pytestmark = pytest.mark.django_db
URL = "/api/payments/callback/"


@pytest.fixture
def payment(tenant):
    package = PackageFactory(tenant=tenant, price=Decimal("50.00"), duration_minutes=60)
    return PaymentFactory(package=package, provider_reference="PAYACME0001")


def send(client, body, *, secret=None, signature=None, raw=None):
    """POST `body` (or exact `raw` bytes) signed with `secret` (or the given `signature`)."""
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {}
    if signature is None and secret is not None:
        signature = signature_for(secret, data)
    if signature is not None:
        headers["HTTP_X_SIGNATURE"] = signature
    return client.post(URL, data=data, content_type="application/json", **headers)


def completed(payment, **extra):
    return {
        "reference": payment.provider_reference,
        "status": "completed",
        "amount": "50.00",
        "currency": "KES",
        **extra,
    }


def error(response):
    return response.json()["error"]


def test_signed_completion_settles_the_payment_and_provisions_one_hotspot_user(
    api_client, payment, tenant
):
    response = send(api_client, completed(payment), secret=tenant.payment_secret)
    assert response.status_code == 200
    assert response.json() == {
        "reference": "PAYACME0001",
        "status": "completed",
        "amount": "50.00",
        "currency": "KES",
        "duplicate": False,
    }
    payment.refresh_from_db()
    assert payment.status == "completed" and payment.completed_at is not None
    assert payment.raw_callback["reference"] == "PAYACME0001"
    assert HotspotUser.objects.filter(payment=payment).count() == 1


def test_repeated_callback_answers_the_same_and_does_nothing_twice(api_client, payment, tenant):
    first = send(api_client, completed(payment), secret=tenant.payment_secret)
    payment.refresh_from_db()
    completed_at = payment.completed_at
    hotspot_user = HotspotUser.objects.get(payment=payment)

    again = send(api_client, completed(payment), secret=tenant.payment_secret)
    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    payment.refresh_from_db()
    assert payment.completed_at == completed_at
    assert list(HotspotUser.objects.filter(payment=payment)) == [hotspot_user]


def test_failed_callback_records_the_reason(api_client, payment, tenant):
    body = {**completed(payment), "status": "failed", "reason": "Insufficient funds"}
    response = send(api_client, body, secret=tenant.payment_secret)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    payment.refresh_from_db()
    assert (payment.status, payment.failure_reason) == ("failed", "Insufficient funds")
    assert not HotspotUser.objects.exists()
    repeat = send(api_client, body, secret=tenant.payment_secret)
    assert repeat.status_code == 200 and repeat.json()["duplicate"] is True


def test_callback_contradicting_an_earlier_one_is_a_conflict(api_client, payment, tenant):
    send(api_client, completed(payment), secret=tenant.payment_secret)
    response = send(
        api_client, {**completed(payment), "status": "failed"}, secret=tenant.payment_secret
    )
    assert response.status_code == 409
    assert error(response)["code"] == "invalid_transition"
    payment.refresh_from_db()
    assert payment.status == "completed"


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "",  # empty
        "not-hex-at-all",
        "ab" * 31,  # too short
        "0" * 64,  # well-formed, wrong
    ],
)
def test_missing_or_bad_signature_is_401_and_changes_nothing(api_client, payment, signature):
    response = send(api_client, completed(payment), signature=signature)
    assert response.status_code == 401
    assert error(response)["code"].startswith("signature_")
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert not HotspotUser.objects.exists()


def test_signature_with_another_tenants_secret_is_refused(api_client, payment, other_tenant):
    response = send(api_client, completed(payment), secret=other_tenant.payment_secret)
    assert response.status_code == 401
    assert error(response)["code"] == "signature_mismatch"
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_signature_covers_the_exact_body(api_client, payment, tenant):
    signed = json.dumps(completed(payment, amount="1.00")).encode()
    tampered = json.dumps(completed(payment)).encode()
    response = send(
        api_client, None, raw=tampered, signature=signature_for(tenant.payment_secret, signed)
    )
    assert response.status_code == 401
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_sha256_prefixed_uppercase_signature_is_accepted(api_client, payment, tenant):
    raw = json.dumps(completed(payment)).encode()
    signature = "sha256=" + signature_for(tenant.payment_secret, raw).upper()
    assert send(api_client, None, raw=raw, signature=signature).status_code == 200


def test_unknown_reference_is_404(api_client, payment, tenant):
    body = {**completed(payment), "reference": "PAYNOSUCHREF"}
    response = send(api_client, body, secret=tenant.payment_secret)
    assert response.status_code == 404
    assert error(response) == {
        "code": "unknown_reference",
        "message": "No payment has this reference.",
    }


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"amount": "49.99"}, "Amount 49.99 does not match the expected 50.00 KES."),
        ({"amount": 5000}, "Amount 5000 does not match the expected 50.00 KES."),
        ({"currency": "USD"}, "Currency USD does not match the expected KES."),
    ],
)
def test_amount_or_currency_mismatch_is_409_and_changes_nothing(
    api_client, payment, tenant, changes, says
):
    response = send(api_client, completed(payment, **changes), secret=tenant.payment_secret)
    assert response.status_code == 409
    assert error(response) == {"code": "amount_mismatch", "message": says}
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_amount_as_a_json_number_is_accepted(api_client, payment, tenant):
    response = send(api_client, completed(payment, amount=50), secret=tenant.payment_secret)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"PAYACME0001"',
        b'{"status": "completed", "amount": "50.00"}',
        b'{"reference": 42, "status": "completed", "amount": "50.00"}',
        b'{"reference": "", "status": "completed", "amount": "50.00"}',
        b"\xff\xfe\x00garbage",
        b"[" * 10_000,
        b'{"reference": "PAYACME0001", "status": "completed", "amount": NaN}',
    ],
)
def test_malformed_body_is_400(api_client, payment, raw):
    response = send(api_client, None, raw=raw, signature="0" * 64)
    assert response.status_code == 400
    assert error(response)["code"] == "malformed"
    payment.refresh_from_db()
    assert payment.status == "pending"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"status": "refunded"}, "status"),
        ({"amount": "fifty"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": None}, "amount"),
        ({"reason": ["x"]}, "reason"),
    ],
)
def test_signed_but_invalid_fields_are_400_with_the_field(
    api_client, payment, tenant, changes, field
):
    response = send(api_client, completed(payment, **changes), secret=tenant.payment_secret)
    assert response.status_code == 400
    assert field in error(response)["fields"]
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_oversized_body_is_refused(api_client, payment, tenant):
    body = completed(payment, reason="x" * 20_000)
    response = send(api_client, body, secret=tenant.payment_secret)
    assert response.status_code == 413
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_only_post(api_client):
    response = api_client.get(URL)
    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"


def test_callback_ignores_user_credentials_and_csrf(payment, tenant, staff):
    """The provider has no session or token; a browser session must not make CSRF kick in."""
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    assert send(client, completed(payment), secret=tenant.payment_secret).status_code == 200


def test_every_call_is_logged_with_its_reference(api_client, payment, tenant, caplog):
    caplog.set_level(logging.INFO, logger="payments.callback")
    send(api_client, completed(payment), signature="0" * 64)
    send(api_client, completed(payment), secret=tenant.payment_secret)
    send(api_client, completed(payment), secret=tenant.payment_secret)
    send(api_client, {**completed(payment), "reference": "PAYNOSUCHREF"}, signature="0" * 64)
    lines = [r.getMessage() for r in caplog.records if r.name == "payments.callback"]
    api_lines = [line for line in lines if "http=" in line]
    assert api_lines == [
        "callback ref=PAYACME0001 http=401 outcome=signature_mismatch from=127.0.0.1",
        "callback ref=PAYACME0001 http=200 outcome=completed from=127.0.0.1",
        "callback ref=PAYACME0001 http=200 outcome=completed duplicate from=127.0.0.1",
        "callback ref=PAYNOSUCHREF http=404 outcome=unknown_reference from=127.0.0.1",
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_settle_once(tenant):
    """Providers retry fast: simultaneous identical callbacks provision exactly one hotspot user."""
    from django.test import Client

    package = PackageFactory(tenant=tenant, price=Decimal("50.00"))
    payment = PaymentFactory(package=package, provider_reference="PAYRACE0001")
    raw = json.dumps(completed(payment)).encode()
    signature = signature_for(tenant.payment_secret, raw)

    def call(_: int) -> tuple[int, bool]:
        response = Client().post(
            URL, data=raw, content_type="application/json", HTTP_X_SIGNATURE=signature
        )
        return response.status_code, response.json()["duplicate"]

    answers = run_concurrently(call, 4)
    assert sorted(answers) == [(200, False), (200, True), (200, True), (200, True)]
    assert HotspotUser.objects.filter(payment=payment).count() == 1
