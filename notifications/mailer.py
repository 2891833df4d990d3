"""Sending the email outbox (notifications.email_models.OutgoingEmail) in the background.

`queue()` stores an email in the caller's transaction and wakes this process's sender once it
commits. The sender is one daemon thread per process: it claims due rows (a short lease, so two
processes never send one row at once), sends each through Django's email framework
(EMAIL_BACKEND, i.e. SMTP when EMAIL_URL is set) and marks it sent; an SMTP or network error
schedules a retry after EMAIL_RETRY_SECONDS, doubling up to EMAIL_RETRY_MAX_SECONDS, until
EMAIL_MAX_ATTEMPTS. The thread keeps running while any row is pending and ends when the outbox
is empty; the server wakes it at start (MailerMiddleware), so rows left by a process that died
are sent too. A send never runs inside a request or a transaction: the change never waits for
SMTP and never fails because of it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import smtplib
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connections, transaction
from django.utils import timezone

from .email_models import OutgoingEmail

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # a claimed row is not claimed again for this long
BATCH = 20
IDLE_CHECK_SECONDS = 60.0  # longest sleep while rows are pending (a lease of a dead process)


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


class Mailer:
    """This process's sender thread: started on demand, ends when nothing is pending."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._exiting = False
        atexit.register(self.drain_at_exit)

    def wake(self) -> None:
        """Send what is due now (called after a commit that queued an email)."""
        with self._lock:
            self._stopping = False
            self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="email-outbox", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread (tests, before their database goes away)."""
        with self._lock:
            self._stopping = True
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def drain_at_exit(self, timeout: float = 10.0) -> None:
        """A process that queued emails (a shell, a command) sends what is due before it exits;
        retries that are not due yet are left to the server process."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                return
            self._exiting = True
            self._wake.set()
        thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                delay = deliver_due()
            except Exception:  # a database hiccup: try again later, never die silently
                logger.exception("email outbox: delivery pass failed")
                delay = 5.0
            finally:
                connections.close_all()  # this thread's connections only
            with self._lock:
                if self._exiting:  # sent what was due; later retries are the server's
                    finished = delay is None or delay > 0
                else:  # nothing pending and nobody queued more meanwhile
                    finished = delay is None and not self._wake.is_set()
                if finished:
                    self._thread = None
                    return
            if delay:
                self._wake.wait(min(delay, IDLE_CHECK_SECONDS))


mailer = Mailer()


class MailerMiddleware:
    """ASGI wrapper: the first scope a server process sees wakes its sender once, so emails
    left pending by an earlier process (a crash, a shell that exited) are sent."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._woken = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if not self._woken:
            self._woken = True
            mailer.wake()
        return await self.app(scope, receive, send)
