"""Credentials by SMS: queued with the purchase, sent by the periodic task through the backend
(Africa's Talking against a stand-in speaking its format), retried, and failed visibly."""

from __future__ import annotations

import json
from collections import deque
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import StoredEvent
from payments import services, sms
from payments.models import Payment, SmsMessage
from tests.liveserver import StandIn
from tests.payments.daraja_standin import callback_body

pytestmark = pytest.mark.django_db


class AfricasTalkingStandIn(StandIn):
    """POST /version1/messaging with Africa's Talking's answer format; queued faults."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.faults: deque = deque()
        super().__init__()

    def handle(self, request, method):
        form = self.form(request)
        self.posts.append({"path": request.path, "apiKey": request.headers.get("apiKey"), **form})
        status, body = self.faults.popleft() if self.faults else (201, None)
        if body is None:
            body = {"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
                    "Recipients": [{"statusCode": 101, "number": form["to"],
                                    "status": "Success", "cost": "KES 0.8000",
                                    "messageId": "ATPid_1"}]}}  # fmt: skip
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.respond(request, status, data, "application/json")


@pytest.fixture
def at(settings):
    standin = AfricasTalkingStandIn()
    settings.SMS_BACKEND = "payments.sms.AfricasTalkingBackend"
    settings.AFRICASTALKING_API_URL = standin.url
    settings.AFRICASTALKING_USERNAME = "sandbox"
    settings.AFRICASTALKING_API_KEY = "at-key-123"
    yield standin
    standin.close()


@pytest.fixture
def paid(daraja, mpesa_tenant, package):
    payment = services.payment_start_stk(tenant=mpesa_tenant, package=package, phone="0712345678")
    services.payment_settle_stk_callback(
        secret=payment.callback_secret,
        body=callback_body(payment.checkout_request_id, 0, amount=50),
    )
    payment.refresh_from_db()
    return payment


def due_now():
    SmsMessage.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_completed_purchase_queues_the_login_and_the_task_sends_it(at, paid):
    [message] = SmsMessage.objects.all()
    user = paid.hotspot_user
    assert message.status == "queued" and user.password in message.body
    assert sms.send_queued() == 1
    [post] = at.posts
    assert post["path"] == "/version1/messaging" and post["apiKey"] == "at-key-123"
    assert (post["username"], post["to"]) == ("sandbox", "+254712345678")
    assert user.username in post["message"] and user.password in post["message"]
    message.refresh_from_db()
    assert (message.status, message.provider_id, message.attempts) == ("sent", "ATPid_1", 1)
    assert sms.send_queued() == 0  # sent once


@pytest.mark.parametrize(
    "fault",
    [
        (500, b"<html>down"),
        (201, {"SMSMessageData": {"Message": "x", "Recipients": [
            {"statusCode": 405, "status": "InsufficientBalance", "number": "+2547"}]}}),
        (401, {"error": "bad key"}),
    ],
)  # fmt: skip
def test_a_failing_gateway_is_retried_then_failed_visibly_and_the_purchase_stands(
    settings, at, paid, fault
):
    settings.SMS_MAX_ATTEMPTS = 3
    for _ in range(3):
        at.faults.append(fault)
    sms.send_queued()
    message = SmsMessage.objects.get()
    assert (message.status, message.attempts) == ("queued", 1) and message.last_error
    assert message.next_attempt_at > timezone.now()  # later, not at once
    assert sms.send_queued() == 0
    due_now()
    sms.send_queued()
    due_now()
    sms.send_queued()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 3)
    event = StoredEvent.objects.get(name="SmsDeliveryFailed")
    assert event.data["phone"] == "2547****678" and event.data["attempts"] == 3
    assert paid.hotspot_user.password not in json.dumps(event.data)
    assert Payment.objects.get(pk=paid.pk).status == "completed"


def test_an_unreachable_gateway_is_an_error_not_a_crash(settings, at, paid):
    settings.AFRICASTALKING_API_URL = "http://127.0.0.1:9"
    sms.send_queued()
    message = SmsMessage.objects.get()
    assert message.status == "queued" and "unreachable" in message.last_error


def test_the_console_backend_logs_the_message(settings, paid, caplog):
    settings.SMS_BACKEND = "payments.sms.ConsoleBackend"
    with caplog.at_level("INFO", logger="payments.sms"):
        sms.send_queued()
    assert SmsMessage.objects.get().status == "sent"
    assert paid.hotspot_user.username in caplog.text
