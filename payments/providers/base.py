"""The interface every payment provider implements, and the results it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payments.models import DarajaCredentials, Payment


class ProviderError(Exception):
    """The provider refused or could not be reached. `message` is for the customer.

    `ambiguous`: the request may have reached the provider (a timeout, a garbled answer), so the
    payment stays pending until a callback, a status query or the timeout settles it. Otherwise
    nothing was started and the payment fails at once.
    """

    def __init__(self, message: str, *, ambiguous: bool = False, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.ambiguous = ambiguous
        self.detail = detail or message


@dataclass(frozen=True)
class StartResult:
    """What the provider said when the payment was started."""

    state: str  # "pending" (wait for the callback) or "completed" (e.g. cash in hand)
    checkout_request_id: str = ""
    merchant_request_id: str = ""
    customer_message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryResult:
    """The provider's answer about a started payment."""

    state: str  # "pending" | "completed" | "failed"
    result_code: str = ""
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class PaymentProvider:
    name: str = ""
    #: True: the outcome arrives later (callback/query); False: start() settles it.
    asynchronous: bool = True

    def start(
        self,
        *,
        payment: Payment,
        credentials: DarajaCredentials | None,
        callback_url: str,
    ) -> StartResult:
        raise NotImplementedError

    def query(self, *, payment: Payment, credentials: DarajaCredentials | None) -> QueryResult:
        raise NotImplementedError
