"""Customers' WiFi login by SMS: a backend chosen by SMS_BACKEND (as Django's EMAIL_BACKEND).

- `payments.sms.ConsoleBackend` (default): writes the message to the log (make run).
- `payments.sms.AfricasTalkingBackend`: `POST {AFRICASTALKING_API_URL}/version1/messaging`
  with the `apiKey` header and form fields username, to, message (and from).

Messages are rows (SmsMessage) queued in the purchase's transaction and sent by the periodic
runner (`payments.sms` in PERIODIC_TASKS), so a slow or failing gateway never fails or slows the
purchase. A failed send is retried with a doubling delay; after SMS_MAX_ATTEMPTS the message is
failed and the tenant's staff get an SmsDeliveryFailed event.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from . import signals
from .models import Payment, SmsMessage

logger = logging.getLogger("payments.sms")
AT_SUCCESS = {100, 101, 102}  # Processed, Sent, Queued


class SmsError(Exception):
    """The gateway did not take the message; `str()` says why (kept on the row)."""


class ConsoleBackend:
    def send(self, *, phone: str, message: str) -> str:
        logger.info("SMS to +%s: %s", phone, message)
        return "console"


class AfricasTalkingBackend:
    def send(self, *, phone: str, message: str) -> str:
        data = {
            "username": settings.AFRICASTALKING_USERNAME,
            "to": "+" + phone.lstrip("+"),
            "message": message,
        }
        if settings.AFRICASTALKING_SENDER:
            data["from"] = settings.AFRICASTALKING_SENDER
        try:
            response = httpx.post(
                settings.AFRICASTALKING_API_URL + "/version1/messaging",
                data=data,
                headers={"apiKey": settings.AFRICASTALKING_API_KEY, "Accept": "application/json"},
                timeout=10,
            )
        except httpx.HTTPError as exc:
            raise SmsError(f"gateway unreachable: {exc!r}") from exc
        try:
            body = response.json()
            recipients = body["SMSMessageData"]["Recipients"]
        except (ValueError, KeyError, TypeError):
            raise SmsError(
                f"gateway answered {response.status_code}: {response.text[:150]}"
            ) from None
        if response.status_code not in (200, 201) or not recipients:
            raise SmsError(f"gateway answered {response.status_code}: {response.text[:150]}")
        first = recipients[0]
        if first.get("statusCode") not in AT_SUCCESS:
            raise SmsError(f"{first.get('status', 'refused')} ({first.get('statusCode')})")
        return str(first.get("messageId", ""))[:100]


def backend() -> Any:
    return import_string(settings.SMS_BACKEND)()


def credentials_message(*, payment: Payment, hotspot_user: Any) -> str:
    local = timezone.localtime(hotspot_user.expires_at, payment.tenant.tzinfo)
    expires = local.strftime("%Y-%m-%d %H:%M")
    return (
        f"{payment.tenant.name} WiFi: username {hotspot_user.username} "
        f"password {hotspot_user.password} valid until {expires}."
    )


def sms_queue_credentials(*, payment: Payment, hotspot_user: Any) -> SmsMessage:
    """Queue the customer's login for sending (in the caller's transaction)."""
    return SmsMessage.objects.create(
        tenant_id=payment.tenant_id,
        phone=payment.phone,
        body=credentials_message(payment=payment, hotspot_user=hotspot_user)[:480],
        payment=payment,
    )


def sms_send(*, message: SmsMessage) -> SmsMessage:
    """One attempt; success → sent, failure → retried later, or failed after the last one."""
    try:
        provider_id = backend().send(phone=message.phone, message=message.body)
    except SmsError as exc:
        return _record_failure(message=message, error=str(exc))
    except Exception as exc:  # a broken backend must not stop the others
        logger.exception("SMS backend crashed")
        return _record_failure(message=message, error=f"backend error: {exc!r}")
    SmsMessage.objects.filter(pk=message.pk).update(
        status=SmsMessage.Status.SENT,
        attempts=message.attempts + 1,
        sent_at=timezone.now(),
        provider_id=provider_id,
        last_error="",
    )
    message.refresh_from_db()
    return message


@transaction.atomic
def _record_failure(*, message: SmsMessage, error: str) -> SmsMessage:
    attempts = message.attempts + 1
    final = attempts >= settings.SMS_MAX_ATTEMPTS
    delay = settings.SMS_RETRY_SECONDS * (2 ** (attempts - 1))
    SmsMessage.objects.filter(pk=message.pk).update(
        attempts=attempts,
        last_error=error[:300],
        status=SmsMessage.Status.FAILED if final else SmsMessage.Status.QUEUED,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    message.refresh_from_db()
    logger.warning("SMS %s attempt %s failed: %s", message.pk, attempts, error)
    if final:
        signals.sms_failed.send(sender=SmsMessage, message=message, by=None)
    return message


def send_queued() -> int:
    """Send every queued SMS that is due (the periodic task); how many were attempted."""
    due = list(
        SmsMessage.objects.filter(
            status=SmsMessage.Status.QUEUED, next_attempt_at__lte=timezone.now()
        ).order_by("next_attempt_at")[:50]
    )
    for message in due:
        sms_send(message=message)
    return len(due)
