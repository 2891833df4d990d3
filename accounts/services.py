"""Every change to a user account. Views, admin, API and shell call these, never .save()."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.errors import InvalidTransition, PermissionDenied
from tenants.models import Tenant

from . import signals
from .models import User
from .utils import normalize_phone

UPDATABLE_FIELDS = ("first_name", "last_name", "email", "phone", "role")
PROFILE_FIELDS = ("first_name", "last_name", "email", "phone")


def can_manage_users(by: User | None, tenant_id: int | None) -> bool:
    """System (None) and system admins manage anyone; tenant admins their own tenant's users."""
    if by is None or by.is_system_admin:
        return True
    return by.is_tenant_admin and tenant_id is not None and by.tenant_id == tenant_id


def _require_can_manage(by: User | None, tenant_id: int | None) -> None:
    if not can_manage_users(by, tenant_id):
        raise PermissionDenied("You are not allowed to manage this tenant's users.")


def _clean_role_and_tenant(role: str, tenant: Tenant | None, by: User | None) -> None:
    if role not in User.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if role == User.Role.SYSTEM_ADMIN:
        if tenant is not None:
            raise ValidationError({"tenant": "System admins do not belong to a tenant."})
        if by is not None and not by.is_system_admin:
            raise PermissionDenied("Only system admins can create system admins.")
    elif tenant is None:
        raise ValidationError({"tenant": "Tenant admins and staff need a tenant."})


def _clean_phone(phone: str) -> str:
    if not phone:
        return ""
    try:
        return normalize_phone(phone)
    except ValueError as exc:
        raise ValidationError({"phone": str(exc)}) from exc


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str,
    tenant: Tenant | None = None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    phone: str = "",
    by: User | None,
) -> User:
    """Create an account; tenant admins may only add to their own tenant."""
    _clean_role_and_tenant(role, tenant, by)
    _require_can_manage(by, tenant.pk if tenant else None)
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": "A username is required."})
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "That username is already taken."})
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        phone=_clean_phone(phone),
        role=role,
        tenant=tenant,
        is_staff=role == User.Role.SYSTEM_ADMIN,
        is_superuser=role == User.Role.SYSTEM_ADMIN,
    )
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    signals.user_created.send(sender=User, user=user, by=by)
    return user


@transaction.atomic
def user_update(*, user: User, data: Mapping[str, Any], by: User | None) -> User:
    """Update profile fields (and, for admins, the role). Sends user_updated if anything changed."""
    unknown = set(data) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValidationError(f"These fields cannot be updated: {', '.join(sorted(unknown))}.")
    is_self = by is not None and by.pk == user.pk
    if not is_self or "role" in data:
        _require_can_manage(by, user.tenant_id)
    user = User.objects.select_for_update().get(pk=user.pk)
    if "role" in data and data["role"] != user.role:
        if user.is_system_admin or data["role"] == User.Role.SYSTEM_ADMIN:
            raise ValidationError({"role": "A system admin's role cannot be changed here."})
        if is_self:
            raise ValidationError({"role": "You cannot change your own role."})
        _clean_role_and_tenant(data["role"], user.tenant, by)
    changed = []
    for field, value in data.items():
        if field == "phone":
            value = _clean_phone(value)
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.full_clean(exclude=["password"])
        user.save(update_fields=changed)
        signals.user_updated.send(sender=User, user=user, changed=changed, by=by)
    return user


@transaction.atomic
def user_delete(*, user: User, by: User | None) -> None:
    _require_can_manage(by, user.tenant_id)
    if by is not None and by.pk == user.pk:
        raise InvalidTransition("You cannot delete your own account.")
    snapshot = {
        "user_id": user.pk,
        "username": user.username,
        "full_name": user.display_name,
        "tenant_id": user.tenant_id,
        "role": user.role,
    }
    user.delete()
    signals.user_deleted.send(sender=User, by=by, **snapshot)


@transaction.atomic
def user_change_password(*, user: User, new_password: str, by: User | None) -> User:
    """Set a new password (validated); the caller checks the old one where a person types it."""
    if by is not None and by.pk != user.pk:
        _require_can_manage(by, user.tenant_id)
    user = User.objects.select_for_update().get(pk=user.pk)
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])
    signals.password_changed.send(sender=User, user=user, by=by)
    return user


@transaction.atomic
def user_suspend(
    *,
    user: User,
    reason: str,
    by: User | None,
    until: datetime | None = None,
    lockout: bool = False,
) -> User:
    """Suspend an account (indefinitely, or `until` a time for a lockout)."""
    _require_can_manage(by, user.tenant_id)
    if by is not None and by.pk == user.pk:
        raise InvalidTransition("You cannot suspend your own account.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A reason is required to suspend an account."})
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_suspended:
        raise InvalidTransition(f"{user.username} is already suspended.")
    user.status = User.Status.SUSPENDED
    user.suspension_reason = reason[:500]
    user.suspended_until = until
    user.save(update_fields=["status", "suspension_reason", "suspended_until"])
    signals.account_suspended.send(
        sender=User, user=user, reason=user.suspension_reason, until=until, lockout=lockout, by=by
    )
    return user


@transaction.atomic
def user_activate(*, user: User, by: User | None) -> User:
    _require_can_manage(by, user.tenant_id)
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.status != User.Status.SUSPENDED:
        raise InvalidTransition(f"{user.username} is not suspended.")
    user.status = User.Status.ACTIVE
    user.suspension_reason = ""
    user.suspended_until = None
    user.failed_login_count = 0
    user.save(
        update_fields=["status", "suspension_reason", "suspended_until", "failed_login_count"]
    )
    signals.account_activated.send(sender=User, user=user, by=by)
    return user


@transaction.atomic
def user_record_login_failure(*, username: str) -> User | None:
    """Count a failed sign-in; the Nth in a row locks the account for a while (an event)."""
    user = User.objects.select_for_update().filter(username=username).first()
    if user is None:
        return None
    if user.is_suspended:
        return user
    user.failed_login_count += 1
    user.save(update_fields=["failed_login_count"])
    if user.failed_login_count >= settings.LOGIN_FAILURE_LIMIT:
        minutes = settings.LOGIN_LOCKOUT_MINUTES
        user.failed_login_count = 0
        user.save(update_fields=["failed_login_count"])
        if user.status == User.Status.SUSPENDED:  # an older lockout that ran out
            user.status = User.Status.ACTIVE
        user = user_suspend(
            user=user,
            reason=f"{settings.LOGIN_FAILURE_LIMIT} failed sign-in attempts in a row; "
            f"locked for {minutes} minutes.",
            until=timezone.now() + timedelta(minutes=minutes),
            lockout=True,
            by=None,
        )
    return user


@transaction.atomic
def user_record_login_success(*, user: User) -> None:
    """A successful sign-in resets the failure count and clears a lockout that has run out."""
    fields: dict[str, Any] = {"failed_login_count": 0}
    if user.status == User.Status.SUSPENDED and not user.is_suspended:
        fields.update(status=User.Status.ACTIVE, suspension_reason="", suspended_until=None)
    User.objects.filter(pk=user.pk).update(**fields)
    for key, value in fields.items():
        setattr(user, key, value)


def with_reason(message: str, reason: str) -> str:
    """The message, then the reason the admin gave (the person is told why, not only that)."""
    reason = " ".join((reason or "").split())
    return f"{message} Reason: {reason}" if reason else message


def login_block_reason(user: User) -> str | None:
    """Why `user` may not sign in now (shown to them), or None if they may."""
    if user.is_suspended:
        if user.suspended_until is not None:
            local = timezone.localtime(user.suspended_until)
            return (
                "Your account is temporarily locked after too many failed sign-in attempts. "
                f"Try again after {local:%H:%M} ({local:%Z})."
            )
        return with_reason(
            "Your account has been suspended. Contact your administrator.",
            user.suspension_reason,
        )
    if user.is_system_admin:
        return None
    tenant = user.tenant
    if tenant is None:
        return "Your account is not attached to an organisation."
    if tenant.status == Tenant.Status.PENDING:
        return "Your organisation is awaiting approval by the platform team."
    if tenant.status == Tenant.Status.SUSPENDED:
        return with_reason(
            "Your organisation's account is suspended. Contact support.", tenant.suspension_reason
        )
    return None
