"""Event payloads read from the domain's models: the only ORM reads of the event system.

Each returns plain JSON-ready data (ids, names, masked phones, ISO timestamps), never a model
instance, a secret or a hash; the catalog's `from_*` builders combine them with their fields.
"""

from __future__ import annotations

from typing import Any

from accounts.models import User
from accounts.utils import mask_phone
from hotspot.models import HotspotSession, HotspotUser, Package, Router
from notifications.realtime.protocol import iso
from payments.models import Payment, SmsMessage, Voucher, VoucherBatch
from tenants.models import Tenant


def active_tenant_ids() -> list[int]:
    """Every active tenant's id (a platform announcement's audience)."""
    return list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True))


def tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.pk,
        "tenant_name": tenant.name,
        "tenant_slug": tenant.slug,
        "status": tenant.status,
    }


def user_data(user: User) -> dict[str, Any]:
    return {
        "user_id": user.pk,
        "username": user.username,
        "full_name": user.display_name,
        "role": user.role,
        "tenant_id": user.tenant_id,
    }


def payment_data(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.pk,
        "tenant_id": payment.tenant_id,
        "reference": payment.provider_reference,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "phone": mask_phone(payment.phone),
        "package_id": payment.package_id,
        "package_name": payment.package.name,
    }


def hotspot_user_data(hotspot_user: HotspotUser) -> dict[str, Any]:
    return {
        "hotspot_user_id": hotspot_user.pk,
        "tenant_id": hotspot_user.tenant_id,
        "username": hotspot_user.username,
        "package_id": hotspot_user.package_id,
        "package_name": hotspot_user.package.name,
        "phone": mask_phone(hotspot_user.phone),
        "expires_at": iso(hotspot_user.expires_at),
    }


def package_data(package: Package) -> dict[str, Any]:
    return {
        "package_id": package.pk,
        "tenant_id": package.tenant_id,
        "name": package.name,
        "price": str(package.price),
        "currency": package.currency,
        "duration_minutes": package.duration_minutes,
        "is_active": package.is_active,
    }


def router_data(router: Router) -> dict[str, Any]:
    return {
        "router_id": router.pk,
        "tenant_id": router.tenant_id,
        "name": router.name,
        "address": router.address,
        "last_seen": iso(router.last_seen),
    }


def session_data(session: HotspotSession) -> dict[str, Any]:
    router = session.router
    return {
        "session_id": session.pk,
        "tenant_id": session.tenant_id,
        "router_id": session.router_id,
        "router_name": router.name if router else "",
        "username": session.username,
        "mac": session.mac,
        "ip": session.ip,
        "status": session.status,
        "started_at": iso(session.started_at),
        "input_octets": session.input_octets,
        "output_octets": session.output_octets,
        "terminate_cause": session.terminate_cause,
        "disconnect": session.disconnect,
    }


def voucher_batch_data(batch: VoucherBatch) -> dict[str, Any]:
    return {
        "batch_id": batch.pk,
        "tenant_id": batch.tenant_id,
        "package_id": batch.package_id,
        "package_name": batch.package.name,
        "count": batch.count,
    }


def voucher_data(voucher: Voucher, hotspot_user: HotspotUser) -> dict[str, Any]:
    """A redeemed voucher (never its code) and the hotspot user it gave."""
    return {
        "voucher_id": voucher.pk,
        "batch_id": voucher.batch_id,
        "tenant_id": voucher.tenant_id,
        "package_id": voucher.package_id,
        "package_name": voucher.package.name,
        "hotspot_user_id": hotspot_user.pk,
        "hotspot_username": hotspot_user.username,
    }


def sms_data(message: SmsMessage) -> dict[str, Any]:
    """An SMS that could not be delivered (never its text: it holds the login)."""
    return {
        "sms_id": message.pk,
        "tenant_id": message.tenant_id,
        "payment_id": message.payment_id,
        "phone": mask_phone(message.phone),
        "attempts": message.attempts,
        "error": message.last_error,
    }


def first_tenant_admin(tenant: Tenant) -> User | None:
    """The tenant admin created with a registration (the oldest)."""
    return tenant.users.filter(role=User.Role.TENANT_ADMIN).order_by("pk").first()


def hotspot_user_of(payment: Payment) -> HotspotUser | None:
    """The hotspot user a payment provisioned, if any."""
    return HotspotUser.objects.filter(payment=payment).first()
