"""Cash at the counter: the money is in the staff member's hand, so starting it settles it."""

from __future__ import annotations

from .base import PaymentProvider, QueryResult, StartResult


class CashProvider(PaymentProvider):
    name = "cash"
    asynchronous = False

    def start(self, *, payment, credentials, callback_url) -> StartResult:  # noqa: ANN001
        return StartResult(state="completed", customer_message="Paid in cash.")

    def query(self, *, payment, credentials) -> QueryResult:  # noqa: ANN001
        return QueryResult(state=payment.status)
