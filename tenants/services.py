"""Every change to a tenant: public registration, approval, suspension, reactivation, updates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import user_create
from accounts.utils import clean_phone
from config.errors import InvalidTransition, PermissionDenied, reject_unknown_fields
from hotspot.services import packages_set_currency

from . import signals
from .models import Tenant, generate_payment_secret

UPDATABLE_FIELDS = ("name", "contact_email", "contact_phone", "time_zone", "currency")
#: A tenant's own details in the order they are shown: the admin's add form, the API's tenant.
DETAIL_FIELDS = ("name", "slug", "contact_email", "contact_phone", "time_zone", "currency")


def _require_system_admin(by: User | None) -> None:
    if by is not None and not by.is_system_admin:
        raise PermissionDenied("Only system admins can change a tenant's status.")


def _clean_slug(slug: str, name: str) -> str:
    slug = slugify(slug or name)[:60]
    if not slug:
        raise ValidationError({"slug": _("Choose a short name made of letters, digits or dashes.")})
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": _("That short name is already taken.")})
    return slug


def _locked(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().get(pk=tenant.pk)


def _locked_in(tenant: Tenant, status: str, only: str) -> Tenant:
    """The tenant's row, locked, if it is in `status`; else InvalidTransition ("only …")."""
    tenant = _locked(tenant)
    if tenant.status != status:
        raise InvalidTransition(
            f"{tenant.name} is {tenant.get_status_display().lower()}; only {only}."
        )
    return tenant


@transaction.atomic
def tenant_register(
    *,
    name: str,
    contact_email: str,
    admin_username: str,
    admin_password: str,
    slug: str = "",
    contact_phone: str = "",
    admin_email: str = "",
    admin_first_name: str = "",
    admin_last_name: str = "",
) -> Tenant:
    """Public sign-up: a pending tenant and its first tenant admin, who waits for approval."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Enter your organisation's name.")})
    tenant = Tenant(
        name=name,
        slug=_clean_slug(slug, name),
        contact_email=contact_email,
        contact_phone=clean_phone(contact_phone, field="contact_phone"),
        status=Tenant.Status.PENDING,
    )
    tenant.full_clean()
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as exc:  # a double submit racing past the check above
        raise ValidationError({"slug": _("That short name is already taken.")}) from exc
    admin = user_create(
        username=admin_username,
        password=admin_password,
        role=User.Role.TENANT_ADMIN,
        tenant=tenant,
        email=admin_email or contact_email,
        first_name=admin_first_name,
        last_name=admin_last_name,
        by=None,
    )
    signals.tenant_registered.send(sender=Tenant, tenant=tenant, admin_user=admin, by=None)
    return tenant


@transaction.atomic
def tenant_create(
    *,
    name: str,
    contact_email: str,
    by: User | None,
    slug: str = "",
    contact_phone: str = "",
    status: str = Tenant.Status.ACTIVE,
    time_zone: str = "",
    currency: str = "",
) -> Tenant:
    """A system admin creates a tenant directly (already active unless told otherwise)."""
    _require_system_admin(by)
    if status not in (Tenant.Status.ACTIVE, Tenant.Status.PENDING):
        raise ValidationError({"status": "A new tenant is either active or pending."})
    now = timezone.now()
    tenant = Tenant(
        name=(name or "").strip(),
        slug=_clean_slug(slug, name),
        contact_email=contact_email,
        contact_phone=clean_phone(contact_phone, field="contact_phone"),
        status=status,
        approved_at=now if status == Tenant.Status.ACTIVE else None,
        approved_by=by if status == Tenant.Status.ACTIVE else None,
        **({"time_zone": time_zone} if time_zone else {}),
        **({"currency": currency.upper()} if currency else {}),
    )
    tenant.full_clean()
    tenant.save()
    signals.tenant_created.send(sender=Tenant, tenant=tenant, by=by)
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, data: Mapping[str, Any], by: User | None) -> Tenant:
    """Edit contact details, time zone and currency (system admins, or the tenant's own admins).

    A new currency is also the currency of the tenant's packages (their prices are re-read in
    it, hotspot.services.packages_set_currency); payments keep the one they were made in.
    """
    if by is not None and not (
        by.is_system_admin or (by.is_tenant_admin and by.tenant_id == tenant.pk)
    ):
        raise PermissionDenied("You are not allowed to edit this tenant.")
    reject_unknown_fields(data, UPDATABLE_FIELDS)
    tenant = _locked(tenant)
    changed = []
    for field, value in data.items():
        if field == "contact_phone":
            value = clean_phone(value, field="contact_phone")
        elif field == "name":
            value = (value or "").strip()
        elif field == "currency":
            value = (value or "").strip().upper()
        elif field == "time_zone":
            value = (value or "").strip()
        if getattr(tenant, field) != value:
            setattr(tenant, field, value)
            changed.append(field)
    if changed:
        tenant.full_clean()
        tenant.save(update_fields=[*changed, "updated_at"])
        if "currency" in changed:
            packages_set_currency(tenant=tenant, currency=tenant.currency, by=by)
        signals.tenant_updated.send(sender=Tenant, tenant=tenant, changed=changed, by=by)
    return tenant


@transaction.atomic
def tenant_payment_secret_rotate(*, tenant: Tenant, by: User | None) -> Tenant:
    """A new payment callback secret (docs/api.md): callbacks signed with the old one answer 401
    from the moment this commits, so the provider must be given the new one."""
    if by is not None and not (
        by.is_system_admin or (by.is_tenant_admin and by.tenant_id == tenant.pk)
    ):
        raise PermissionDenied("Only the tenant's admins can rotate its payment secret.")
    tenant = _locked(tenant)
    tenant.payment_secret = generate_payment_secret()
    tenant.save(update_fields=["payment_secret", "updated_at"])
    signals.tenant_payment_secret_rotated.send(sender=Tenant, tenant=tenant, by=by)
    return tenant


@transaction.atomic
def tenant_approve(*, tenant: Tenant, by: User | None) -> Tenant:
    _require_system_admin(by)
    tenant = _locked_in(tenant, Tenant.Status.PENDING, "a pending tenant can be approved")
    tenant.status = Tenant.Status.ACTIVE
    tenant.approved_at = timezone.now()
    tenant.approved_by = by
    tenant.save(update_fields=["status", "approved_at", "approved_by", "updated_at"])
    signals.tenant_approved.send(sender=Tenant, tenant=tenant, by=by)
    return tenant


@transaction.atomic
def tenant_suspend(*, tenant: Tenant, reason: str, by: User | None) -> Tenant:
    _require_system_admin(by)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("A reason is required to suspend a tenant.")})
    tenant = _locked_in(tenant, Tenant.Status.ACTIVE, "an active tenant can be suspended")
    tenant.status = Tenant.Status.SUSPENDED
    tenant.suspension_reason = reason[:500]
    tenant.suspended_at = timezone.now()
    tenant.suspended_by = by
    tenant.save(
        update_fields=["status", "suspension_reason", "suspended_at", "suspended_by", "updated_at"]
    )
    signals.tenant_suspended.send(
        sender=Tenant, tenant=tenant, reason=tenant.suspension_reason, by=by
    )
    return tenant


@transaction.atomic
def tenant_reactivate(*, tenant: Tenant, by: User | None) -> Tenant:
    _require_system_admin(by)
    tenant = _locked_in(tenant, Tenant.Status.SUSPENDED, "a suspended tenant can be reactivated")
    tenant.status = Tenant.Status.ACTIVE
    tenant.suspension_reason = ""
    tenant.suspended_at = None
    tenant.suspended_by = None
    tenant.save(
        update_fields=["status", "suspension_reason", "suspended_at", "suspended_by", "updated_at"]
    )
    signals.tenant_reactivated.send(sender=Tenant, tenant=tenant, by=by)
    return tenant
