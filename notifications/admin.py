"""The email outbox in the Django admin: what was sent, what is waiting, what failed and why."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.admin_tools import ReadOnlyAdminMixin

from .email_models import OutgoingEmail
from .mailer import mailer


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: emails are written by the platform, never by hand."""

    list_display = ("created_at", "kind", "recipients", "subject", "status", "attempts", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("subject", "to")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in OutgoingEmail._meta.fields]
    actions = ["retry_now"]

    @admin.display(description="To")
    def recipients(self, email: OutgoingEmail) -> str:
        return ", ".join(email.to)

    @admin.action(description="Send again now (pending and failed ones)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutgoingEmail]) -> None:
        count = queryset.exclude(status=OutgoingEmail.Status.SENT).update(
            status=OutgoingEmail.Status.PENDING, next_attempt_at=timezone.now(), attempts=0
        )
        mailer.wake()
        messages.success(request, f"{count} email(s) queued to be sent again.")
