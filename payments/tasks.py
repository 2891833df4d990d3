"""Periodic payment work (settings.PERIODIC_TASKS, run once across the server processes)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import services
from .models import Payment

logger = logging.getLogger("payments.tasks")
BATCH = 50


def _pending_stk() -> object:
    return Payment.objects.filter(
        provider=Payment.Provider.DARAJA, status=Payment.Status.PENDING
    ).order_by("created_at")


def query_pending_stk_payments() -> int:
    """Ask Daraja about pending STK payments with no callback after MPESA_QUERY_AFTER_SECONDS.

    Each is asked at most once per MPESA_QUERY_AFTER_SECONDS; returns how many were asked.
    """
    now = timezone.now()
    after = timedelta(seconds=settings.MPESA_QUERY_AFTER_SECONDS)
    due = list(
        _pending_stk()
        .filter(created_at__lte=now - after)
        .exclude(checkout_request_id="")
        .filter(Q(last_queried_at__isnull=True) | Q(last_queried_at__lte=now - after))[:BATCH]
    )
    for payment in due:
        try:
            services.payment_query_stk(payment=payment)
        except Exception:  # one bad payment must not stop the others
            logger.exception("querying %s failed", payment.provider_reference)
    return len(due)


def fail_timed_out_stk_payments() -> int:
    """Fail pending STK payments older than MPESA_TIMEOUT_SECONDS; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.MPESA_TIMEOUT_SECONDS)
    failed = 0
    for payment in list(_pending_stk().filter(created_at__lte=cutoff)[:BATCH]):
        if services.payment_time_out(payment=payment):
            failed += 1
    return failed
