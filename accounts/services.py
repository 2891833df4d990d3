"""Every change to a user account. Views, admin, API and shell call these, never .save()."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import InvalidTransition, PermissionDenied, reject_unknown_fields
from tenants.models import Tenant

from . import signals
from .models import User
from .utils import clean_phone

logger = logging.getLogger("accounts.sign_in")

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
        raise ValidationError({"username": _("A username is required.")})
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": _("That username is already taken.")})
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        phone=clean_phone(phone),
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
    reject_unknown_fields(data, UPDATABLE_FIELDS)
    is_self = by is not None and by.pk == user.pk
    if not is_self or "role" in data:
        _require_can_manage(by, user.tenant_id)
    user = User.objects.select_for_update().get(pk=user.pk)
    if "role" in data and data["role"] != user.role:
        if user.is_system_admin or data["role"] == User.Role.SYSTEM_ADMIN:
            raise ValidationError({"role": "A system admin's role cannot be changed here."})
        if is_self:
            raise ValidationError({"role": _("You cannot change your own role.")})
        _clean_role_and_tenant(data["role"], user.tenant, by)
    changed = []
    for field, value in data.items():
        if field == "phone":
            value = clean_phone(value)
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.full_clean(exclude=["password"])
        user.save(update_fields=changed)
        signals.user_updated.send(sender=User, user=user, changed=changed, by=by)
    return user


@transaction.atomic
def user_set_language(*, user: User, language: str) -> User:
    """The language of the person's own pages, toasts and emails ("" = the browser's).

    A personal preference: no event (nobody else needs a toast about it).
    """
    if language and language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": f"Unknown language {language!r}."})
    if user.language != language:
        user.language = language
        User.objects.filter(pk=user.pk).update(language=language)
    return user


@transaction.atomic
def user_delete(*, user: User, by: User | None) -> None:
    _require_can_manage(by, user.tenant_id)
    if by is not None and by.pk == user.pk:
        raise InvalidTransition(_("You cannot delete your own account."))
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
        raise InvalidTransition(_("You cannot suspend your own account."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("A reason is required to suspend an account.")})
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


# --- Sign-in guessing (in the style of django-axes; counters in the cache) -----------------------
#
# Failures are counted per (username, client address) and per client address. Either reaching its
# limit locks that pair (or that address) for LOGIN_LOCKOUT_MINUTES: an attacker locks out only
# themselves, never the person from their own address. While locked, every attempt is refused
# before the password is looked at (the same answer whatever the password, known or unknown
# username) and is itself counted, so the lock lasts as long as the guessing. Per account (all
# addresses) a ceiling, LOGIN_ACCOUNT_FAILURE_LIMIT, turns further attempts into one per
# LOGIN_ACCOUNT_SLOWDOWN_SECONDS: distributed guessing slows to a crawl, the owner still gets in.
# Nothing here suspends the account or touches its sockets.


@dataclass(frozen=True)
class SignInLock:
    """Why sign-in is refused before the password is checked, and until when."""

    kind: str  # "address" | "pair" | "account" (slowed down) | "unavailable" (cache down)
    until: datetime

    @property
    def retry_after(self) -> int:
        return max(1, int((self.until - timezone.now()).total_seconds()) + 1)

    @property
    def message(self) -> str:
        if self.kind == "unavailable":
            return _("Sign-in is briefly unavailable. Try again in a moment.")
        if self.kind == "account":
            return _(
                "Too many sign-in attempts for this account right now. "
                "Try again in {seconds} seconds."
            ).format(seconds=self.retry_after)
        local = timezone.localtime(self.until)
        return (
            "Too many failed sign-in attempts. Sign-in is locked for a while; "
            f"try again after {local:%H:%M} ({local:%Z})."
        )


def _sign_in_key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"signin:{kind}:{digest}"


def _window() -> int:
    return settings.LOGIN_LOCKOUT_MINUTES * 60


def _count(key: str) -> int:
    """+1 on a failure counter that lapses a window after the last failure."""
    timeout = _window()
    cache.add(key, 0, timeout)
    try:
        value = cache.incr(key)
    except ValueError:  # lapsed between add and incr
        cache.add(key, 1, timeout)
        value = 1
    cache.touch(key, timeout)
    return value


def _keys(username: str, address: str) -> dict[str, str]:
    name = (username or "").strip().lower()
    return {
        "pair": _sign_in_key("pair", name, address),
        "address": _sign_in_key("address", address),
        "account": _sign_in_key("account", name),
    }


def sign_in_check(*, username: str, address: str) -> SignInLock | None:
    """The lock that refuses this attempt before its password is checked, or None.

    Raises whatever the cache raises when it is down (the caller refuses sign-in then).
    """
    keys = _keys(username, address)
    locks = cache.get_many([f"{keys['pair']}:lock", f"{keys['address']}:lock"])
    now = timezone.now()
    until = max((value for value in locks.values() if value and value > now), default=None)
    if until is not None:
        kind = "address" if f"{keys['address']}:lock" in locks else "pair"
        return SignInLock(kind=kind, until=until)
    failures = cache.get(keys["account"]) or 0
    if failures >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
        gap = settings.LOGIN_ACCOUNT_SLOWDOWN_SECONDS
        if not cache.add(f"{keys['account']}:slot", 1, gap):
            slot_ends = cache.get(f"{keys['account']}:slot_until") or now + timedelta(seconds=gap)
            return SignInLock(kind="account", until=slot_ends)
        cache.set(f"{keys['account']}:slot_until", now + timedelta(seconds=gap), gap)
    return None


def sign_in_failed(*, username: str, address: str, refused: bool = False) -> SignInLock | None:
    """Count a failed (or `refused`, locked) sign-in; returns the lock it starts or extends.

    Refused attempts count for their pair and address (the lock lasts while they go on) but not
    for the account: they were no guess, and one address must not slow the owner down.

    A lock that starts sends `signals.sign_in_locked` (user or None, username, address, until).
    """
    keys = _keys(username, address)
    limits = {
        "pair": settings.LOGIN_FAILURE_LIMIT,
        "address": settings.LOGIN_ADDRESS_FAILURE_LIMIT,
    }
    kinds = ("pair", "address") if refused else ("pair", "address", "account")
    counts = {kind: _count(keys[kind]) for kind in kinds}
    until = timezone.now() + timedelta(seconds=_window())
    result = None
    for kind in ("pair", "address"):
        if counts[kind] < limits[kind]:
            continue
        cache.set(f"{keys[kind]}:lock", until, _window())
        result = SignInLock(kind=kind, until=until)
        if counts[kind] == limits[kind]:
            logger.warning(
                "sign-in locked for %s from %s until %s",
                repr(username) if kind == "pair" else "every username",
                address,
                until.isoformat(),
            )
            user = (
                User.objects.filter(username=username).first()
                if kind == "pair" and username
                else None
            )
            signals.sign_in_locked.send(
                sender=User,
                user=user,
                username=username if kind == "pair" else "",
                address=address,
                until=until,
            )
    return result


def user_record_login_success(*, user: User, address: str | None = None) -> None:
    """A successful sign-in forgets its pair's failures and clears a lockout that ran out.

    (Accounts suspended by the lockout of older versions lapse at `suspended_until`.)
    """
    if address is not None:
        cache.delete_many([_sign_in_key("pair", user.username.lower(), address)])
    fields: dict[str, Any] = {"failed_login_count": 0}
    if user.status == User.Status.SUSPENDED and not user.is_suspended:
        fields.update(status=User.Status.ACTIVE, suspension_reason="", suspended_until=None)
    if any(getattr(user, key) != value for key, value in fields.items()):
        User.objects.filter(pk=user.pk).update(**fields)
        for key, value in fields.items():
            setattr(user, key, value)


def with_reason(message: str, reason: str) -> str:
    """The message, then the reason the admin gave (the person is told why, not only that)."""
    reason = " ".join((reason or "").split())
    if not reason:
        return message
    return _("{message} Reason: {reason}").format(message=message, reason=reason)


def _zone_of(user: User) -> Any:
    """The zone the person reads times in: their tenant's (None: the active one)."""
    return user.tenant.tzinfo if user.tenant_id else None


def login_block_reason(user: User) -> str | None:
    """Why `user` may not sign in now (shown to them), or None if they may."""
    if user.is_suspended:
        if user.suspended_until is not None:
            local = timezone.localtime(user.suspended_until, _zone_of(user))
            return (
                "Your account is temporarily locked after too many failed sign-in attempts. "
                f"Try again after {local:%H:%M} ({local:%Z})."
            )
        return with_reason(
            _("Your account has been suspended. Contact your administrator."),
            user.suspension_reason,
        )
    if user.is_system_admin:
        return None
    tenant = user.tenant
    if tenant is None:
        return _("Your account is not attached to an organisation.")
    if tenant.status == Tenant.Status.PENDING:
        return _("Your organisation is awaiting approval by the platform team.")
    if tenant.status == Tenant.Status.SUSPENDED:
        return with_reason(
            _("Your organisation's account is suspended. Contact support."),
            tenant.suspension_reason,
        )
    return None
