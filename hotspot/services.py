"""Packages and hotspot users: creation, provisioning for a payment, disabling, expiry."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.utils import clean_phone
from config.errors import InvalidTransition, PermissionDenied, reject_unknown_fields
from tenants.models import Tenant

from . import radius, signals
from .models import HotspotUser, Package, Router

if TYPE_CHECKING:
    from payments.models import Payment

PACKAGE_FIELDS = ("name", "price", "duration_minutes", "data_limit_mb", "speed_limit", "is_active")
_ALPHABET = string.ascii_lowercase + string.digits


def _require_tenant_admin(by: User | None, tenant_id: int) -> None:
    if by is None or by.is_system_admin:
        return
    if not (by.is_tenant_admin and by.tenant_id == tenant_id):
        raise PermissionDenied("Only the tenant's admins can change its hotspot settings.")


def _require_tenant_member(by: User | None, tenant_id: int) -> None:
    if by is None or by.is_system_admin:
        return
    if by.tenant_id != tenant_id:
        raise PermissionDenied("That belongs to another tenant.")


def _require_active_tenant(tenant: Tenant) -> None:
    if tenant.status != Tenant.Status.ACTIVE:
        raise InvalidTransition(f"{tenant.name} is not active.")


@transaction.atomic
def package_create(
    *,
    tenant: Tenant,
    name: str,
    price: Decimal,
    duration_minutes: int,
    by: User | None,
    data_limit_mb: int | None = None,
    speed_limit: str = "",
    is_active: bool = True,
) -> Package:
    _require_tenant_admin(by, tenant.pk)
    if Package.objects.filter(tenant=tenant, name__iexact=(name or "").strip()).exists():
        raise ValidationError({"name": _("This tenant already has a package with that name.")})
    package = Package(
        tenant=tenant,
        name=(name or "").strip(),
        price=price,
        currency=tenant.currency,
        duration_minutes=duration_minutes,
        data_limit_mb=data_limit_mb,
        speed_limit=speed_limit,
        is_active=is_active,
    )
    package.full_clean()
    package.save()
    signals.package_created.send(sender=Package, package=package, by=by)
    return package


@transaction.atomic
def package_update(*, package: Package, data: Mapping[str, Any], by: User | None) -> Package:
    _require_tenant_admin(by, package.tenant_id)
    reject_unknown_fields(data, PACKAGE_FIELDS)
    package = Package.objects.select_for_update().get(pk=package.pk)
    if "name" in data:
        name = (data["name"] or "").strip()
        clash = Package.objects.filter(tenant_id=package.tenant_id, name__iexact=name)
        if name and clash.exclude(pk=package.pk).exists():
            raise ValidationError({"name": _("This tenant already has a package with that name.")})
        data = {**data, "name": name}
    changed = [f for f, v in data.items() if getattr(package, f) != v]
    for field in changed:
        setattr(package, field, data[field])
    if changed:
        package.full_clean()
        package.save(update_fields=[*changed, "updated_at"])
        signals.package_updated.send(sender=Package, package=package, changed=changed, by=by)
    return package


@transaction.atomic
def packages_set_currency(*, tenant: Tenant, currency: str, by: User | None) -> list[Package]:
    """The tenant's packages are priced in its new currency (tenants.services.tenant_update):
    the same figures, read in `currency`; each changed package sends package_updated."""
    _require_tenant_admin(by, tenant.pk)
    changed = list(
        Package.objects.select_for_update().filter(tenant=tenant).exclude(currency=currency)
    )
    for package in changed:
        package.currency = currency
        package.save(update_fields=["currency", "updated_at"])
        signals.package_updated.send(sender=Package, package=package, changed=["currency"], by=by)
    return changed


def _unique_username(tenant: Tenant) -> str:
    while True:
        candidate = "hs-" + "".join(secrets.choice(_ALPHABET) for _ in range(6))
        if not HotspotUser.objects.filter(tenant=tenant, username=candidate).exists():
            return candidate


def generate_password(length: int = 8) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _build_hotspot_user(
    *,
    tenant: Tenant,
    package: Package,
    by: User | None,
    phone: str,
    username: str,
    password: str,
    starts_at: datetime | None,
    payment: Payment | None,
) -> HotspotUser:
    if package.tenant_id != tenant.pk:
        raise ValidationError({"package": "That package belongs to another tenant."})
    username = (username or "").strip() or _unique_username(tenant)
    if HotspotUser.objects.filter(tenant=tenant, username=username).exists():
        raise ValidationError({"username": _("That hotspot username is already in use.")})
    phone = clean_phone(phone)
    starts_at = starts_at or timezone.now()
    hotspot_user = HotspotUser(
        tenant=tenant,
        package=package,
        username=username,
        password=password or generate_password(),
        phone=phone,
        payment=payment,
        starts_at=starts_at,
        expires_at=starts_at + package.duration,
    )
    hotspot_user.full_clean(exclude=["payment"])
    hotspot_user.save()
    signals.hotspot_user_created.send(sender=HotspotUser, hotspot_user=hotspot_user, by=by)
    return hotspot_user


@transaction.atomic
def hotspot_user_create(
    *,
    tenant: Tenant,
    package: Package,
    by: User | None,
    phone: str = "",
    username: str = "",
    password: str = "",
    starts_at: datetime | None = None,
) -> HotspotUser:
    """Give a customer router credentials valid for the package's duration."""
    _require_tenant_member(by, tenant.pk)
    _require_active_tenant(tenant)
    if not package.is_active:
        raise ValidationError({"package": _("That package is not on sale.")})
    return _build_hotspot_user(
        tenant=tenant,
        package=package,
        by=by,
        phone=phone,
        username=username,
        password=password,
        starts_at=starts_at,
        payment=None,
    )


@transaction.atomic
def hotspot_user_provision_for_payment(*, payment: Payment) -> HotspotUser:
    """Exactly one hotspot user per completed payment: returns the existing one if any.

    The customer has already paid, so a package taken off sale (or a tenant suspended) since
    the payment started does not refuse the credentials they bought.
    """
    existing = HotspotUser.objects.filter(payment=payment).first()
    if existing is not None:
        return existing
    return _build_hotspot_user(
        tenant=payment.tenant,
        package=payment.package,
        by=None,
        phone=payment.phone,
        username="",
        password="",
        starts_at=None,
        payment=payment,
    )


@transaction.atomic
def hotspot_user_disable(*, hotspot_user: HotspotUser, by: User | None) -> HotspotUser:
    _require_tenant_member(by, hotspot_user.tenant_id)
    if by is not None and not (by.is_system_admin or by.is_tenant_admin):
        raise PermissionDenied("Only the tenant's admins can disable hotspot users.")
    hotspot_user = HotspotUser.objects.select_for_update().get(pk=hotspot_user.pk)
    if hotspot_user.status != HotspotUser.Status.ACTIVE:
        raise InvalidTransition(f"{hotspot_user.username} is already {hotspot_user.status}.")
    hotspot_user.status = HotspotUser.Status.DISABLED
    hotspot_user.save(update_fields=["status", "updated_at"])
    signals.hotspot_user_disabled.send(sender=HotspotUser, hotspot_user=hotspot_user, by=by)
    radius.cut_off(hotspot_user=hotspot_user, reason="disabled")
    return hotspot_user


@transaction.atomic
def hotspot_user_expire(*, hotspot_user: HotspotUser, now: datetime | None = None) -> bool:
    """Expire one user if due; False (and nothing sent) if already expired/disabled or not due."""
    now = now or timezone.now()
    hotspot_user = HotspotUser.objects.select_for_update().filter(pk=hotspot_user.pk).first()
    if hotspot_user is None:  # deleted meanwhile
        return False
    if hotspot_user.status != HotspotUser.Status.ACTIVE or hotspot_user.expires_at > now:
        return False
    hotspot_user.status = HotspotUser.Status.EXPIRED
    hotspot_user.save(update_fields=["status", "updated_at"])
    signals.hotspot_user_expired.send(sender=HotspotUser, hotspot_user=hotspot_user, by=None)
    radius.cut_off(hotspot_user=hotspot_user, reason="time")
    return True


def expire_due_hotspot_users(*, now: datetime | None = None) -> int:
    """Expire every active user whose time has ended; each in its own transaction. Idempotent."""
    now = now or timezone.now()
    # Ids first: writing to the table while a cursor iterates it skips rows on SQLite.
    due = list(
        HotspotUser.objects.filter(
            status=HotspotUser.Status.ACTIVE, expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    expired = 0
    for pk in due:
        if hotspot_user_expire(hotspot_user=HotspotUser(pk=pk), now=now):
            expired += 1
    return expired


# --- routers ----------------------------------------------------------------------------------

ROUTER_FIELDS = ("name", "address", "secret", "coa_port")


def _clean_router(router: Router) -> None:
    # field checks first: PostgreSQL cannot even compare a malformed address
    router.full_clean(validate_unique=False)
    clash = Router.objects.filter(address=router.address).exclude(pk=router.pk)
    if router.address and clash.exists():
        raise ValidationError({"address": _("A router with that address is already registered.")})
    name_clash = Router.objects.filter(tenant_id=router.tenant_id, name__iexact=router.name)
    if router.name and name_clash.exclude(pk=router.pk).exists():
        raise ValidationError({"name": _("This tenant already has a router with that name.")})


@transaction.atomic
def router_create(
    *,
    tenant: Tenant,
    name: str,
    address: str,
    secret: str,
    by: User | None,
    coa_port: int = 3799,
) -> Router:
    """Register a router; FreeRADIUS asks for it by address on its next packet (dynamic client)."""
    _require_tenant_admin(by, tenant.pk)
    router = Router(
        tenant=tenant,
        name=(name or "").strip(),
        address=(address or "").strip(),
        secret=secret or "",
        coa_port=coa_port,
    )
    _clean_router(router)
    router.save()
    signals.router_added.send(sender=Router, router=router, by=by)
    return router


@transaction.atomic
def router_update(*, router: Router, data: Mapping[str, Any], by: User | None) -> Router:
    _require_tenant_admin(by, router.tenant_id)
    reject_unknown_fields(data, ROUTER_FIELDS)
    router = Router.objects.select_for_update().get(pk=router.pk)
    data = {
        k: (v.strip() if k in ("name", "address") and isinstance(v, str) else v)
        for k, v in data.items()
    }
    changed = [f for f, v in data.items() if getattr(router, f) != v]
    for field in changed:
        setattr(router, field, data[field])
    if changed:
        _clean_router(router)
        router.save(update_fields=[*changed, "updated_at"])
        signals.router_updated.send(sender=Router, router=router, changed=changed, by=by)
    return router


@transaction.atomic
def router_delete(*, router: Router, by: User | None) -> None:
    """Remove a router: FreeRADIUS stops answering it once its client entry lapses."""
    _require_tenant_admin(by, router.tenant_id)
    router = Router.objects.select_for_update().get(pk=router.pk)
    pk = router.pk
    router.delete()
    router.pk = pk
    signals.router_removed.send(sender=Router, router=router, by=by)
