"""Payments: initiation, and settling them from the provider's callback (idempotently)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.utils import normalize_phone
from config.errors import DomainError, InvalidTransition, NotFound, PermissionDenied
from hotspot.models import HotspotUser, Package
from hotspot.services import hotspot_user_provision_for_payment
from tenants.models import Tenant

from . import signals
from .models import Payment

logger = logging.getLogger("payments.callback")


class AmountMismatch(DomainError):
    code = "amount_mismatch"


@dataclass(frozen=True)
class CallbackResult:
    payment: Payment
    hotspot_user: HotspotUser | None
    duplicate: bool  # True: this reference was already settled the same way; nothing was done


@transaction.atomic
def payment_initiate(
    *,
    tenant: Tenant,
    package: Package,
    phone: str,
    by: User | None = None,
    provider_reference: str = "",
) -> Payment:
    """A customer starts paying for a package: a pending payment at the package's price."""
    if by is not None and not by.is_system_admin and by.tenant_id != tenant.pk:
        raise PermissionDenied("That belongs to another tenant.")
    if tenant.status != Tenant.Status.ACTIVE:
        raise InvalidTransition(f"{tenant.name} is not active.")
    if package.tenant_id != tenant.pk:
        raise ValidationError({"package": "That package belongs to another tenant."})
    if not package.is_active:
        raise ValidationError({"package": "That package is not on sale."})
    if package.price <= 0:
        raise ValidationError({"package": "That package is free; there is nothing to pay."})
    try:
        phone = normalize_phone(phone)
    except ValueError as exc:
        raise ValidationError({"phone": str(exc)}) from exc
    reference = (provider_reference or "").strip() or "PAY" + secrets.token_hex(8).upper()
    max_length = Payment._meta.get_field("provider_reference").max_length
    if len(reference) > max_length:
        raise ValidationError(
            {"provider_reference": f"A provider reference has at most {max_length} characters."}
        )
    if Payment.objects.filter(provider_reference=reference).exists():
        raise ValidationError({"provider_reference": "That provider reference is already used."})
    payment = Payment.objects.create(
        tenant=tenant,
        package=package,
        phone=phone,
        amount=package.price,
        currency=package.currency,
        provider_reference=reference,
    )
    signals.payment_initiated.send(sender=Payment, payment=payment, by=by)
    return payment


@transaction.atomic
def payment_complete(
    *, payment: Payment, by: User | None = None, raw: dict[str, Any] | None = None
) -> tuple[Payment, HotspotUser]:
    """Pending → completed, provisioning its hotspot user in the same transaction."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.status != Payment.Status.PENDING:
        raise InvalidTransition(
            f"Payment {payment.provider_reference} is already {payment.status}; "
            "only a pending payment can be completed."
        )
    payment.status = Payment.Status.COMPLETED
    payment.completed_at = timezone.now()
    if raw is not None:
        payment.raw_callback = raw
    payment.save(update_fields=["status", "completed_at", "raw_callback", "updated_at"])
    hotspot_user = hotspot_user_provision_for_payment(payment=payment)
    signals.payment_completed.send(
        sender=Payment, payment=payment, hotspot_user=hotspot_user, by=by
    )
    return payment, hotspot_user


@transaction.atomic
def payment_fail(
    *, payment: Payment, reason: str, by: User | None = None, raw: dict[str, Any] | None = None
) -> Payment:
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.status != Payment.Status.PENDING:
        raise InvalidTransition(
            f"Payment {payment.provider_reference} is already {payment.status}; "
            "only a pending payment can fail."
        )
    payment.status = Payment.Status.FAILED
    payment.failure_reason = (reason or "Declined by the provider.")[:500]
    payment.failed_at = timezone.now()
    if raw is not None:
        payment.raw_callback = raw
    payment.save(
        update_fields=["status", "failure_reason", "failed_at", "raw_callback", "updated_at"]
    )
    signals.payment_failed.send(
        sender=Payment, payment=payment, reason=payment.failure_reason, by=by
    )
    return payment


def _parse_amount(amount: Any) -> Decimal:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({"amount": "The amount is not a number."}) from exc
    if not value.is_finite():
        raise ValidationError({"amount": "The amount is not a number."})
    return value


@transaction.atomic
def payment_record_callback(
    *,
    provider_reference: str,
    succeeded: bool,
    amount: Any,
    raw: dict[str, Any],
    reason: str = "",
    tenant: Tenant | None = None,
) -> CallbackResult:
    """Settle a payment from the provider's callback.

    Unknown reference → NotFound; amount mismatch → AmountMismatch (both logged, nothing
    changed). A repeat of a callback already applied returns the same result with
    `duplicate=True` and does nothing twice; a contradicting one is InvalidTransition.
    """
    provider_reference = provider_reference.strip() if isinstance(provider_reference, str) else ""
    try:
        value = _parse_amount(amount)
    except ValidationError:
        logger.warning(
            "callback ref=%s rejected: amount %r is not a number", provider_reference, amount
        )
        raise
    if not provider_reference:
        logger.warning("callback rejected: no provider reference")
        raise ValidationError({"provider_reference": "The callback has no provider reference."})
    queryset = Payment.objects.select_for_update()
    if tenant is not None:
        queryset = queryset.filter(tenant=tenant)
    payment = queryset.filter(provider_reference=provider_reference).first()
    if payment is None:
        logger.warning("callback ref=%s rejected: unknown reference", provider_reference)
        raise NotFound(f"No payment with reference {provider_reference!r}.")
    if value != payment.amount:
        logger.warning(
            "callback ref=%s rejected: amount %s != expected %s",
            provider_reference,
            value,
            payment.amount,
        )
        raise AmountMismatch(
            f"Amount {value} does not match the expected {payment.amount} {payment.currency}."
        )
    wanted = Payment.Status.COMPLETED if succeeded else Payment.Status.FAILED
    if payment.status == wanted:
        logger.info("callback ref=%s duplicate (%s): nothing done", provider_reference, wanted)
        return CallbackResult(
            payment=payment,
            hotspot_user=HotspotUser.objects.filter(payment=payment).first(),
            duplicate=True,
        )
    if payment.status != Payment.Status.PENDING:
        logger.warning(
            "callback ref=%s rejected: says %s but payment is %s",
            provider_reference,
            wanted,
            payment.status,
        )
        raise InvalidTransition(
            f"Payment {provider_reference} is already {payment.status}; the callback says {wanted}."
        )
    if succeeded:
        payment, hotspot_user = payment_complete(payment=payment, raw=raw)
        logger.info(
            "callback ref=%s completed; hotspot user %s", provider_reference, hotspot_user.username
        )
        return CallbackResult(payment=payment, hotspot_user=hotspot_user, duplicate=False)
    payment = payment_fail(payment=payment, reason=reason, raw=raw)
    logger.info("callback ref=%s failed: %s", provider_reference, payment.failure_reason)
    return CallbackResult(payment=payment, hotspot_user=None, duplicate=False)
