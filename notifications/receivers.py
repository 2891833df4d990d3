"""Domain signals → catalog events → broadcast(). Connected in NotificationsConfig.ready().

Receivers run inside the service's transaction, so the stored event commits or rolls back
with the change; publishing happens only after commit (see notifications.broadcast).
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from accounts import signals as accounts
from hotspot import signals as hotspot
from payments import signals as payments
from tenants import signals as tenants

from . import catalog
from .broadcast import broadcast

# --- tenants -------------------------------------------------------------------------------


@receiver(tenants.tenant_registered, dispatch_uid="notifications.tenant_registered")
def on_tenant_registered(sender: Any, tenant: Any, admin_user: Any = None, **kw: Any) -> None:
    broadcast(catalog.TenantRegistered.from_tenant(tenant, admin_user=admin_user))


@receiver(tenants.tenant_created, dispatch_uid="notifications.tenant_created")
def on_tenant_created(sender: Any, tenant: Any, **kw: Any) -> None:
    broadcast(catalog.TenantCreated.from_tenant(tenant))


@receiver(tenants.tenant_updated, dispatch_uid="notifications.tenant_updated")
def on_tenant_updated(sender: Any, tenant: Any, changed: list[str], **kw: Any) -> None:
    broadcast(catalog.TenantUpdated.from_tenant(tenant, changed=changed))


@receiver(tenants.tenant_approved, dispatch_uid="notifications.tenant_approved")
def on_tenant_approved(sender: Any, tenant: Any, **kw: Any) -> None:
    broadcast(catalog.TenantApproved.from_tenant(tenant))


@receiver(tenants.tenant_suspended, dispatch_uid="notifications.tenant_suspended")
def on_tenant_suspended(sender: Any, tenant: Any, reason: str, **kw: Any) -> None:
    broadcast(catalog.TenantSuspended.from_tenant(tenant, reason=reason))


@receiver(tenants.tenant_reactivated, dispatch_uid="notifications.tenant_reactivated")
def on_tenant_reactivated(sender: Any, tenant: Any, **kw: Any) -> None:
    broadcast(catalog.TenantReactivated.from_tenant(tenant))


# --- accounts ------------------------------------------------------------------------------


@receiver(accounts.user_created, dispatch_uid="notifications.user_created")
def on_user_created(sender: Any, user: Any, **kw: Any) -> None:
    broadcast(catalog.UserCreated.from_user(user))


@receiver(accounts.user_updated, dispatch_uid="notifications.user_updated")
def on_user_updated(sender: Any, user: Any, changed: list[str], **kw: Any) -> None:
    broadcast(catalog.UserUpdated.from_user(user, changed=changed))


@receiver(accounts.user_deleted, dispatch_uid="notifications.user_deleted")
def on_user_deleted(
    sender: Any,
    user_id: int,
    username: str,
    full_name: str,
    tenant_id: int | None,
    role: str,
    **kw: Any,
) -> None:
    broadcast(
        catalog.UserDeleted.from_snapshot(
            user_id=user_id, username=username, full_name=full_name, tenant_id=tenant_id, role=role
        )
    )


@receiver(accounts.password_changed, dispatch_uid="notifications.password_changed")
def on_password_changed(sender: Any, user: Any, **kw: Any) -> None:
    broadcast(catalog.PasswordChanged.from_user(user))


@receiver(accounts.account_suspended, dispatch_uid="notifications.account_suspended")
def on_account_suspended(
    sender: Any, user: Any, reason: str, until: Any = None, lockout: bool = False, **kw: Any
) -> None:
    broadcast(catalog.AccountSuspended.from_user(user, reason=reason, until=until, lockout=lockout))


@receiver(accounts.account_activated, dispatch_uid="notifications.account_activated")
def on_account_activated(sender: Any, user: Any, **kw: Any) -> None:
    broadcast(catalog.AccountActivated.from_user(user))


# --- payments ------------------------------------------------------------------------------


@receiver(payments.payment_initiated, dispatch_uid="notifications.payment_initiated")
def on_payment_initiated(sender: Any, payment: Any, **kw: Any) -> None:
    broadcast(catalog.PaymentInitiated.from_payment(payment))


@receiver(payments.payment_completed, dispatch_uid="notifications.payment_completed")
def on_payment_completed(sender: Any, payment: Any, hotspot_user: Any = None, **kw: Any) -> None:
    broadcast(catalog.PaymentCompleted.from_payment(payment, hotspot_user=hotspot_user))


@receiver(payments.payment_failed, dispatch_uid="notifications.payment_failed")
def on_payment_failed(sender: Any, payment: Any, reason: str = "", **kw: Any) -> None:
    broadcast(catalog.PaymentFailed.from_payment(payment, reason=reason))


# --- hotspot -------------------------------------------------------------------------------


@receiver(hotspot.package_created, dispatch_uid="notifications.package_created")
def on_package_created(sender: Any, package: Any, **kw: Any) -> None:
    broadcast(catalog.PackageCreated.from_package(package))


@receiver(hotspot.package_updated, dispatch_uid="notifications.package_updated")
def on_package_updated(sender: Any, package: Any, changed: list[str], **kw: Any) -> None:
    broadcast(catalog.PackageUpdated.from_package(package, changed=changed))


@receiver(hotspot.hotspot_user_created, dispatch_uid="notifications.hotspot_user_created")
def on_hotspot_user_created(sender: Any, hotspot_user: Any, **kw: Any) -> None:
    broadcast(catalog.HotspotUserCreated.from_hotspot_user(hotspot_user))


@receiver(hotspot.hotspot_user_expired, dispatch_uid="notifications.hotspot_user_expired")
def on_hotspot_user_expired(sender: Any, hotspot_user: Any, **kw: Any) -> None:
    broadcast(catalog.HotspotUserExpired.from_hotspot_user(hotspot_user))


@receiver(hotspot.hotspot_user_disabled, dispatch_uid="notifications.hotspot_user_disabled")
def on_hotspot_user_disabled(sender: Any, hotspot_user: Any, **kw: Any) -> None:
    broadcast(catalog.HotspotUserDisabled.from_hotspot_user(hotspot_user))


# === portal (issue 13): each payment change also reaches the customer's own socket ==========


@receiver(payments.payment_initiated, dispatch_uid="notifications.portal_payment_initiated")
@receiver(payments.payment_completed, dispatch_uid="notifications.portal_payment_completed")
@receiver(payments.payment_failed, dispatch_uid="notifications.portal_payment_failed")
def on_portal_payment_changed(sender: Any, payment: Any, **kw: Any) -> None:
    broadcast(catalog.PortalPaymentUpdated.from_payment(payment))


@receiver(payments.voucher_batch_created, dispatch_uid="notifications.voucher_batch_created")
def on_voucher_batch_created(sender: Any, batch: Any, **kw: Any) -> None:
    broadcast(catalog.VoucherBatchCreated.from_batch(batch))


@receiver(payments.voucher_redeemed, dispatch_uid="notifications.voucher_redeemed")
def on_voucher_redeemed(sender: Any, voucher: Any, hotspot_user: Any, **kw: Any) -> None:
    broadcast(catalog.VoucherRedeemed.from_voucher(voucher, hotspot_user))


@receiver(payments.sms_failed, dispatch_uid="notifications.sms_failed")
def on_sms_failed(sender: Any, message: Any, **kw: Any) -> None:
    broadcast(catalog.SmsDeliveryFailed.from_object(message))
