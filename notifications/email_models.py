"""The email outbox: each email the platform sends, stored with the change that caused it.

A row is written in the change's transaction (a rolled-back change sends nothing) and sent by
notifications.mailer after commit; a failed send is retried with back-off, so an SMTP server
that is down for a while delays the email but never loses it, and never fails the change.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutgoingEmail(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # gave up after EMAIL_MAX_ATTEMPTS

    kind = models.CharField(max_length=40)  # which email (the template's name)
    to = models.JSONField()  # list of addresses
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    #: not before this time: the next retry, or the lease of the process sending it now
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "notifications"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="email_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {', '.join(self.to)} ({self.status})"
