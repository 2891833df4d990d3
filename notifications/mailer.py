"""Sending the email outbox (notifications.email_models.OutgoingEmail) in the background.

`queue()` stores an email in the caller's transaction and wakes this process's sender once it
commits. Sending is the periodic task `emails` (config/periodic.py, PERIODIC_TASKS), run once across
the server processes: it claims due rows (a short lease, so two processes never send one row
at once), sends each through Django's email framework
(EMAIL_BACKEND, i.e. SMTP when EMAIL_URL is set) and marks it sent; an SMTP or network error
schedules a retry after EMAIL_RETRY_SECONDS, doubling up to EMAIL_RETRY_MAX_SECONDS, until
EMAIL_MAX_ATTEMPTS. A commit that queued an email kicks the task, so it is sent at once; in a
process without a runner (a shell, a command) the kick runs it in a thread that keeps retrying
while rows are pending and sends what is due before the process exits. Rows left by a process
that died are sent by the servers' next periodic run. A send never runs inside a request or a
transaction: the change never waits for SMTP and never fails because of it.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone

from config import periodic

from .email_models import OutgoingEmail

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # a claimed row is not claimed again for this long
BATCH = 20


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: base, 2×base, 4×base … capped."""
    base = float(settings.EMAIL_RETRY_SECONDS)
    cap = float(settings.EMAIL_RETRY_MAX_SECONDS)
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def queue(
    *, kind: str, to: Iterable[str], subject: str, body_text: str, body_html: str = ""
) -> OutgoingEmail | None:
    """Store an email in the current transaction; it is sent after commit."""
    recipients = sorted({address.strip() for address in to if address and address.strip()})
    if not recipients:
        return None
    email = OutgoingEmail.objects.create(
        kind=kind,
        to=recipients,
        subject=" ".join(subject.split())[:255],
        body_text=body_text,
        body_html=body_html,
    )
    transaction.on_commit(mailer.wake)
    return email


def _claim(now: Any) -> list[OutgoingEmail]:
    with transaction.atomic():
        ids = list(
            OutgoingEmail.objects.select_for_update(skip_locked=True)
            .filter(status=OutgoingEmail.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:BATCH]
        )
        if ids:
            OutgoingEmail.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE)
    return list(OutgoingEmail.objects.filter(pk__in=ids).order_by("id"))


def _send(email: OutgoingEmail, connection: Any) -> None:
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=email.to,
        connection=connection,
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    message.send()


def deliver_due() -> float | None:
    """Send every due email once; the seconds until the next one is due (None: none pending)."""
    now = timezone.now()
    batch = _claim(now)
    if batch:
        connection = get_connection()
        try:
            for email in batch:
                _deliver_one(email, connection)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                connection.close()
        return 0.0
    OutgoingEmail.objects.filter(
        status=OutgoingEmail.Status.SENT, sent_at__lt=now - timedelta(days=settings.EMAIL_KEEP_DAYS)
    ).delete()  # the record of sent emails is kept EMAIL_KEEP_DAYS
    upcoming = (
        OutgoingEmail.objects.filter(status=OutgoingEmail.Status.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if upcoming is None:
        return None
    return max(0.0, (upcoming - timezone.now()).total_seconds())


def _deliver_one(email: OutgoingEmail, connection: Any) -> None:
    attempts = email.attempts + 1
    try:
        _send(email, connection)
    except (smtplib.SMTPException, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if attempts >= settings.EMAIL_MAX_ATTEMPTS:
            logger.error(
                "email %s (%s) failed %d times, giving up: %s",
                email.pk,
                email.kind,
                attempts,
                error,
            )
            fields = {"status": OutgoingEmail.Status.FAILED}
        else:
            delay = retry_delay(attempts)
            logger.warning(
                "email %s (%s) not sent (%s); retry in %.1f s",
                email.pk,
                email.kind,
                error,
                delay.total_seconds(),
            )
            fields = {"next_attempt_at": timezone.now() + delay}
        OutgoingEmail.objects.filter(pk=email.pk).update(
            attempts=attempts, last_error=error, **fields
        )
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.close()  # a broken connection is not reused for the next email
        connection.connection = None
        return
    OutgoingEmail.objects.filter(pk=email.pk).update(
        status=OutgoingEmail.Status.SENT, attempts=attempts, sent_at=timezone.now(), last_error=""
    )


def send_due() -> float | None:
    """The periodic task (PERIODIC_TASKS["emails"]): send what is due, batch after batch; the
    seconds until the next pending email is due (None: the outbox is empty)."""
    while True:
        delay = deliver_due()
        if delay != 0.0:
            return delay


TASK = "emails"


class Mailer:
    """The outbox's handle on the periodic runner (config/periodic.py), which sends it."""

    def wake(self) -> None:
        """Send what is due now (called after a commit that queued an email)."""
        periodic.kick(TASK)

    def stop(self, timeout: float = 10.0) -> None:
        """End this process's kicked sender (tests, before their database goes away)."""
        periodic.stop_kicked(TASK, timeout)


mailer = Mailer()
