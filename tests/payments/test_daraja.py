"""The STK push flow against a Daraja stand-in over HTTP: formats, tokens, errors, callbacks,
queries and timeouts, as a customer and the tenant would notice them."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from config.errors import NotFound
from hotspot.models import HotspotUser
from payments import services, tasks
from payments.models import Payment
from payments.providers.daraja import (
    RESULT_SENTENCES,
    STK_PUSH_PATH,
    STK_QUERY_PATH,
    TIMED_OUT_SENTENCE,
)
from tests.payments.daraja_standin import OAUTH_PATH, SANDBOX_PASSKEY, callback_body

pytestmark = pytest.mark.django_db


def push(package, phone="0712345678", **kw):
    return services.payment_start_stk(
        tenant=package.tenant, package=package, phone=phone, client_ip="10.0.0.9", **kw
    )


def settle(payment, body):
    return services.payment_settle_stk_callback(secret=payment.callback_secret, body=body)


def hotspot_users(payment):
    return HotspotUser.objects.filter(payment=payment).count()


# --- STK push: the exact request ------------------------------------------------------------


def test_push_sends_darajas_exact_fields_and_leaves_the_payment_pending(
    daraja, mpesa_tenant, package
):
    payment = push(package, "+254 712 345 678")
    [oauth] = daraja.calls(OAUTH_PATH)
    assert oauth["query"] == "grant_type=client_credentials"
    assert (
        oauth["headers"]["Authorization"]
        == "Basic " + base64.b64encode(b"demo-key:demo-secret").decode()
    )
    [call] = daraja.calls(STK_PUSH_PATH)
    body = call["json"]
    assert call["headers"]["Authorization"] == "Bearer token-1"
    assert set(body) == {
        "BusinessShortCode", "Password", "Timestamp", "TransactionType", "Amount", "PartyA",
        "PartyB", "PhoneNumber", "CallBackURL", "AccountReference", "TransactionDesc",
    }  # fmt: skip
    ts = body["Timestamp"]
    assert len(ts) == 14 and ts.isdigit()
    sent = datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo("Africa/Nairobi"))
    assert abs((sent - timezone.now()).total_seconds()) < 120  # Nairobi time, not UTC
    assert base64.b64decode(body["Password"]).decode() == "174379" + SANDBOX_PASSKEY + ts
    assert body["BusinessShortCode"] == "174379" and body["PartyB"] == "174379"
    assert body["TransactionType"] == "CustomerPayBillOnline"
    assert body["Amount"] == 50 and isinstance(body["Amount"], int)
    assert body["PartyA"] == body["PhoneNumber"] == "254712345678"
    assert body["CallBackURL"] == (
        f"http://testserver/payments/stk/callback/{payment.callback_secret}/"
    )
    assert len(body["AccountReference"]) <= 12 and len(body["TransactionDesc"]) <= 13
    assert payment.status == Payment.Status.PENDING
    assert payment.checkout_request_id == next(iter(daraja.pushes))
    assert payment.provider == Payment.Provider.DARAJA and payment.client_ip == "10.0.0.9"


def test_a_till_pays_buy_goods_to_its_till_number(daraja, tenant, package):
    services.daraja_credentials_set(
        tenant=tenant, by=None, shortcode="600100", account_type="till", till_number="600200",
        passkey="pk", consumer_key="k", consumer_secret="s",
    )  # fmt: skip
    push(package)
    body = daraja.calls(STK_PUSH_PATH)[0]["json"]
    assert (body["TransactionType"], body["BusinessShortCode"], body["PartyB"]) == (
        "CustomerBuyGoodsOnline",
        "600100",
        "600200",
    )


def test_the_token_is_cached_then_renewed_on_a_401(daraja, mpesa_tenant, package):
    push(package, "0712000001")
    push(package, "0712000002")
    assert len(daraja.calls(OAUTH_PATH)) == 1  # cached
    daraja.revoke_tokens()  # Daraja forgot it early: the push gets a 401
    payment = push(package, "0712000003")
    assert len(daraja.calls(OAUTH_PATH)) == 2
    assert payment.status == Payment.Status.PENDING and payment.checkout_request_id


def test_a_token_about_to_expire_is_not_reused(daraja, mpesa_tenant, package):
    daraja.expires_in = 30  # shorter than the renewal margin
    push(package, "0712000001")
    push(package, "0712000002")
    assert len(daraja.calls(OAUTH_PATH)) == 2


def test_a_price_with_cents_is_refused_before_any_prompt(daraja, mpesa_tenant, package):
    package.price = Decimal("49.50")
    package.save()
    with pytest.raises(services.ValidationError):
        push(package)
    assert daraja.requests == [] and Payment.objects.count() == 0


# --- Daraja errors: clear message, never stuck ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "body", "state", "words"),
    [
        (STK_PUSH_PATH, 500, {"errorMessage": "Internal"}, "failed", "not charged"),
        (STK_PUSH_PATH, 503, "garbage", "failed", "not charged"),
        (
            STK_PUSH_PATH,
            400,
            {
                "requestId": "1",
                "errorCode": "400.002.02",
                "errorMessage": "Bad Request - Invalid PhoneNumber",
            },  # noqa: E501
            "failed",
            "Invalid PhoneNumber",
        ),
        (STK_PUSH_PATH, 200, "garbage", "pending", "may still pay"),
        (STK_PUSH_PATH, 200, {"ResponseCode": "0"}, "pending", "may still pay"),
        (STK_PUSH_PATH, 200, "timeout", "pending", "did not answer in time"),
        (OAUTH_PATH, 401, {"errorMessage": "bad key"}, "failed", "not set up correctly"),
        (OAUTH_PATH, 500, "garbage", "failed", "trouble"),
        (OAUTH_PATH, 200, "timeout", "failed", "not answering"),
    ],
)
def test_daraja_errors_fail_the_payment_or_keep_it_for_the_timeout(
    daraja, mpesa_tenant, package, path, status, body, state, words
):
    daraja.fail(path, status, body)
    payment = push(package)
    assert payment.status == state
    message = payment.failure_reason
    assert words in message, message
    if state == "pending":  # ambiguous: the timeout settles it, it is never stuck
        Payment.objects.filter(pk=payment.pk).update(
            created_at=timezone.now() - timedelta(seconds=181)
        )
        assert tasks.fail_timed_out_stk_payments() == 1
        payment.refresh_from_db()
        assert (payment.status, payment.failure_reason) == ("failed", TIMED_OUT_SENTENCE)


def test_an_unreachable_daraja_fails_the_payment_at_once(settings, mpesa_tenant, package):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        settings.MPESA_API_URL = f"http://127.0.0.1:{s.getsockname()[1]}"
    payment = push(package)
    assert payment.status == "failed" and "cannot be reached" in payment.failure_reason


def test_a_tenant_without_a_daraja_account_cannot_start_a_payment(daraja, tenant, package):
    with pytest.raises(services.InvalidTransition, match="cannot take M-Pesa payments"):
        push(package)
    assert daraja.requests == [] and Payment.objects.count() == 0


# --- the callback ---------------------------------------------------------------------------


def test_a_successful_callback_completes_and_provisions_once(daraja, mpesa_tenant, package):
    payment = push(package)
    body = callback_body(payment.checkout_request_id, 0, amount=50.0)
    first = settle(payment, body)
    assert (first.payment.status, first.duplicate) == ("completed", False)
    assert first.payment.receipt_number == "NLJ7RT61SV" and first.hotspot_user
    again = settle(payment, body)
    assert (again.payment.status, again.duplicate) == ("completed", True)
    assert again.hotspot_user == first.hotspot_user and hotspot_users(payment) == 1
    # A contradicting replay changes nothing either.
    settle(payment, callback_body(payment.checkout_request_id, 1032, desc="Request cancelled"))
    payment.refresh_from_db()
    assert payment.status == "completed" and hotspot_users(payment) == 1


@pytest.mark.parametrize("code", [1032, 1037, 2001, 1, 1001, 1019, 9999, 17])
def test_every_result_code_fails_with_a_sentence_the_customer_understands(
    daraja, mpesa_tenant, package, code
):
    payment = push(package)
    result = settle(payment, callback_body(payment.checkout_request_id, code, desc="Some desc"))
    assert result.payment.status == "failed" and hotspot_users(payment) == 0
    expected = RESULT_SENTENCES.get(str(code), f"M-Pesa declined the payment (code {code})")
    assert result.payment.failure_reason.startswith(expected)
    assert result.payment.result_code == str(code)


def test_the_known_sentences():
    assert RESULT_SENTENCES["1032"] == "Cancelled on the phone"
    assert "PIN" in RESULT_SENTENCES["2001"] and "balance" in RESULT_SENTENCES["1"]
    assert "did not answer" in RESULT_SENTENCES["1037"]


def test_an_amount_that_differs_fails_the_payment_with_the_reason(daraja, mpesa_tenant, package):
    payment = push(package)
    result = settle(payment, callback_body(payment.checkout_request_id, 0, amount=1))
    assert result.payment.status == "failed" and hotspot_users(payment) == 0
    assert "KES 1" in result.payment.failure_reason and "50.00" in result.payment.failure_reason


def test_a_forged_secret_is_unknown_and_changes_nothing(daraja, mpesa_tenant, package):
    payment = push(package)
    body = callback_body(payment.checkout_request_id)
    for secret in ("x" * 32, "", payment.token, None):
        with pytest.raises(NotFound):
            services.payment_settle_stk_callback(secret=secret, body=body)
    payment.refresh_from_db()
    assert payment.status == "pending"


BAD_BODIES = [
    [],
    {},
    {"Body": {}},
    {"Body": {"stkCallback": "x"}},
    {"Body": {"stkCallback": {"CheckoutRequestID": "a", "ResultCode": 0}}},
    {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "m",
                "CheckoutRequestID": "c",
                "ResultCode": "zero",
            }
        }
    },  # noqa: E501
    {
        "Body": {
            "stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "c", "ResultCode": True}
        }
    },  # noqa: E501
    {
        "Body": {
            "stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "c", "ResultCode": 0}
        }
    },  # noqa: E501
    {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "m",
                "CheckoutRequestID": "c",
                "ResultCode": 0,
                "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 50}]},
            }
        }
    },  # noqa: E501
    {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "m",
                "CheckoutRequestID": "c",
                "ResultCode": 0,
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": "NaN"},
                        {"Name": "MpesaReceiptNumber", "Value": "R"},
                        {"Name": "TransactionDate", "Value": 1},
                        {"Name": "PhoneNumber", "Value": 1},
                    ]
                },
            }
        }
    },  # noqa: E501
    {"Body": {"stkCallback": {}}, "extra": 1},
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_malformed_callback_is_rejected_and_changes_nothing(daraja, mpesa_tenant, package, body):
    payment = push(package)
    if (
        isinstance(body, dict)
        and "Body" in body
        and isinstance(body["Body"].get("stkCallback"), dict)
    ):
        body["Body"]["stkCallback"].setdefault("CheckoutRequestID", payment.checkout_request_id)
    with pytest.raises(services.CallbackRejected):
        settle(payment, body)
    payment.refresh_from_db()
    assert payment.status == "pending" and hotspot_users(payment) == 0


def test_a_callback_about_another_checkout_is_rejected(daraja, mpesa_tenant, package):
    payment = push(package)
    with pytest.raises(services.CallbackRejected):
        settle(payment, callback_body("ws_CO_someone_else"))
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_a_success_after_our_timeout_still_completes(daraja, mpesa_tenant, package):
    payment = push(package)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert tasks.fail_timed_out_stk_payments() == 1
    result = settle(payment, callback_body(payment.checkout_request_id, 0, amount=50))
    assert result.payment.status == "completed" and hotspot_users(payment) == 1


def test_the_callback_view_answers_in_darajas_format(client, daraja, mpesa_tenant, package):
    payment = push(package)
    url = f"/payments/stk/callback/{payment.callback_secret}/"
    body = json.dumps(callback_body(payment.checkout_request_id, 0, amount=50))
    ok = client.post(url, body, content_type="application/json")
    assert (ok.status_code, ok.json()) == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})
    assert client.post(url, body, content_type="application/json").status_code == 200  # repeat
    assert client.post(url, "{nope", content_type="application/json").status_code == 400
    forged = client.post("/payments/stk/callback/" + "a" * 32 + "/", body, "application/json")
    assert forged.status_code == 404
    assert client.get(url).status_code == 405
    assert hotspot_users(payment) == 1


# --- query and timeout (the periodic tasks) -------------------------------------------------


def age(payment, seconds):
    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_query_waits_for_its_time_then_settles_from_darajas_answer(daraja, mpesa_tenant, package):
    paid, cancelled, waiting = (push(package, f"071200000{i}") for i in range(3))
    assert tasks.query_pending_stk_payments() == 0  # younger than MPESA_QUERY_AFTER_SECONDS
    for p in (paid, cancelled, waiting):
        age(p, 50)
    daraja.results[paid.checkout_request_id] = (0, "The service request is processed successfully.")
    daraja.results[cancelled.checkout_request_id] = (1032, "Request cancelled by user")
    assert tasks.query_pending_stk_payments() == 3
    for p in (paid, cancelled, waiting):
        p.refresh_from_db()
    assert paid.status == "completed" and hotspot_users(paid) == 1
    assert (cancelled.status, cancelled.failure_reason) == ("failed", "Cancelled on the phone")
    assert waiting.status == "pending" and waiting.query_count == 1
    [query] = [
        c
        for c in daraja.calls(STK_QUERY_PATH)
        if c["json"]["CheckoutRequestID"] == waiting.checkout_request_id
    ]  # noqa: E501
    body = query["json"]
    assert set(body) == {"BusinessShortCode", "Password", "Timestamp", "CheckoutRequestID"}
    assert (
        base64.b64decode(body["Password"]).decode()
        == "174379" + SANDBOX_PASSKEY + body["Timestamp"]
    )  # noqa: E501
    assert tasks.query_pending_stk_payments() == 0  # asked again only after the interval


def test_a_failing_query_leaves_the_payment_pending_for_the_timeout(daraja, mpesa_tenant, package):
    payment = push(package)
    age(payment, 50)
    daraja.fail(STK_QUERY_PATH, 503, "garbage")
    tasks.query_pending_stk_payments()
    payment.refresh_from_db()
    assert payment.status == "pending"
    age(payment, 179)
    assert tasks.fail_timed_out_stk_payments() == 0
    age(payment, 181)
    assert tasks.fail_timed_out_stk_payments() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.result_code) == ("failed", "timeout")
    assert tasks.fail_timed_out_stk_payments() == 0  # once


# --- abuse limits ---------------------------------------------------------------------------


def test_pushes_are_limited_per_phone_and_per_client_address(
    settings, daraja, mpesa_tenant, package
):
    settings.PORTAL_STK_LIMIT_PER_PHONE = 2
    settings.PORTAL_STK_LIMIT_PER_IP = 3
    push(package, "0712000001")
    push(package, "0712000001")
    with pytest.raises(services.RateLimited, match="This phone has already been sent 2"):
        push(package, "+254712000001")
    push(package, "0712000002")
    with pytest.raises(services.RateLimited, match="from this device"):
        push(package, "0712000003")
    other = services.payment_start_stk(
        tenant=mpesa_tenant, package=package, phone="0712000003", client_ip="10.0.0.10"
    )
    assert other.status == "pending"
    assert len(daraja.calls(STK_PUSH_PATH)) == 4


# --- phones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("0712345678", "254712345678"),
        ("712345678", "254712345678"),
        ("+254712345678", "254712345678"),
        ("254712345678", "254712345678"),
        ("0112345678", "254112345678"),
        (" 0712 345-678 ", "254712345678"),
    ],
)
def test_phones_are_accepted_as_people_type_them(typed, stored):
    assert services.normalize_mpesa_phone(typed) == stored


@pytest.mark.parametrize(
    "typed", ["", "07123", "071234567890", "0812345678", "+1 202 555 0100", "07l2345678", "abc"]
)
def test_other_phones_are_refused(typed):
    with pytest.raises(ValueError, match="M-Pesa number"):
        services.normalize_mpesa_phone(typed)
