"""Payment reads for views, API and admin: always scoped through `for_user`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from accounts.utils import search_q
from config.errors import NotFound

from .models import Payment


def payment_list(*, user: Any, search: str = "", status: str | None = None) -> QuerySet[Payment]:
    """Payments `user` may see, searched by provider reference or phone digits, newest first."""
    payments = Payment.objects.for_user(user).select_related("package", "tenant")
    query = search_q(search, "provider_reference")
    if query is not None:
        payments = payments.filter(query)
    if status:
        payments = payments.filter(status=status)
    return payments.order_by("-created_at", "-pk")


def payment_get(*, user: Any, payment_id: Any) -> Payment:
    try:
        pk = int(payment_id)
    except (TypeError, ValueError):
        pk = 0
    found = Payment.objects.for_user(user).select_related("package", "tenant").filter(pk=pk).first()
    if found is None:
        raise NotFound("No such payment.")
    return found


def payment_totals(*, user: Any) -> dict[str, Any]:
    """Counts per status and the completed revenue `user` may see (for dashboards)."""
    rows = (
        Payment.objects.for_user(user)
        .values("status")
        .order_by()
        .annotate(count=Count("pk"), total=Sum("amount"))
    )
    counts = dict.fromkeys(Payment.Status.values, 0)
    revenue = Decimal("0")
    for row in rows:
        counts[row["status"]] = row["count"]
        if row["status"] == Payment.Status.COMPLETED:
            revenue = row["total"] or Decimal("0")
    return {"counts": counts, "revenue": revenue}


# --- the customer's view of their own payment (portal page, socket, status JSON) ------------


def payment_for_token(token: Any) -> Payment | None:
    """The payment this portal token opens, or None (unknown, malformed or expired)."""
    from django.utils import timezone

    if not isinstance(token, str) or not 20 <= len(token) <= 64:
        return None
    payment = Payment.objects.select_related("tenant", "package").filter(token=token).first()
    if payment is None:
        return None
    if payment.token_expires_at is not None and payment.token_expires_at <= timezone.now():
        return None
    return payment


PENDING_SENTENCE = gettext_noop("Check your phone and enter your M-Pesa PIN")
COMPLETED_SENTENCE = gettext_noop("Paid — you are online")
FAILED_SENTENCE = gettext_noop("The payment failed.")


def in_every_language(sentence: str) -> dict[str, str]:
    """{language: sentence} for settings.LANGUAGES: the portal page shows its own language's
    (the socket frame is built once, with no language of its own)."""
    out = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            out[code] = gettext(sentence)
    return out


def payment_public_state(*, payment: Payment) -> dict[str, Any]:
    """What the paying customer may know: state, sentence, and once completed the login.

    The same dict is the `payment` socket frame and the status JSON.
    """
    from hotspot.models import HotspotUser

    state: dict[str, Any] = {
        "type": "payment",
        "state": payment.status,
        "message": PENDING_SENTENCE,
        "reason": "",
        "package": payment.package.name,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "phone": payment.masked_phone,
    }
    sentence: str | None = PENDING_SENTENCE
    if payment.status == Payment.Status.PENDING and payment.failure_reason:
        sentence = None
        state["message"] = payment.failure_reason  # a push whose answer we never got
    elif payment.status == Payment.Status.FAILED:
        sentence = None if payment.failure_reason else FAILED_SENTENCE
        state["message"] = payment.failure_reason or gettext(FAILED_SENTENCE)
        state["reason"] = state["message"]
    elif payment.status == Payment.Status.COMPLETED:
        sentence = COMPLETED_SENTENCE
        user = HotspotUser.objects.filter(payment=payment).first()
        if user is not None:
            state["credentials"] = {
                "username": user.username,
                "password": user.password,
                "expires_at": user.expires_at.isoformat(),
            }
    if sentence is not None:  # our own words: in the active language, and in every language
        state["message"] = gettext(sentence)
        state["messages"] = in_every_language(sentence)
        if state["reason"]:
            state["reason"] = state["message"]
    return state
