"""Vouchers: batches of prepaid codes, and redeeming one on the portal (once, even under races).

Codes: VOUCHER_CODE_LENGTH characters from an alphabet without look-alikes (no 0/O, 1/I/L),
optionally after the batch's prefix; case and dashes do not matter when typed.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from config.errors import DomainError, InvalidTransition, PermissionDenied
from hotspot.models import HotspotUser, Package
from hotspot.services import hotspot_user_create
from tenants.models import Tenant

from . import signals
from .models import Voucher, VoucherBatch

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
VOUCHER_CODE_LENGTH = 10
MAX_BATCH = 1000
PREFIX_RE = re.compile(r"^[A-Z2-9]{0,6}$")


class VoucherRefused(DomainError):
    code = "voucher_refused"


class VoucherSpent(VoucherRefused):
    """A real code of this tenant that can no longer be redeemed (used or disabled).

    Not a guess: the try is given back. Phones behind one NAT share an address, and one
    phone retrying the code it already redeemed must not use up the others' tries. A guesser
    gains nothing from it: finding a spent code is as unlikely as finding an unused one, and
    sending a known spent code again tries no new code.
    """


class VoucherGuessing(DomainError):
    code = "rate_limited"


def normalize_code(typed: Any) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", str(typed or "")).upper()[:24]


def _new_code(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(VOUCHER_CODE_LENGTH))


@transaction.atomic
def voucher_batch_create(
    *, tenant: Tenant, package: Package, count: int, by: User | None, prefix: str = ""
) -> VoucherBatch:
    """`count` (1–1,000) unused vouchers for `package`; only the tenant's admins."""
    if by is not None and not (
        by.is_system_admin or (by.is_tenant_admin and by.tenant_id == tenant.pk)
    ):
        raise PermissionDenied("Only the tenant's admins can create vouchers.")
    if tenant.status != Tenant.Status.ACTIVE:
        raise InvalidTransition(f"{tenant.name} is not active.")
    prefix = (prefix or "").strip().upper()
    errors = {}
    if package.tenant_id != tenant.pk or not package.is_active:
        errors["package"] = "Choose one of your packages on sale."
    if not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        errors["count"] = f"Between 1 and {MAX_BATCH:,} vouchers at a time."
    if not PREFIX_RE.match(prefix):
        errors["prefix"] = "Up to 6 letters or digits (no 0, 1, I, L or O)."
    if errors:
        raise ValidationError(errors)
    batch = VoucherBatch.objects.create(
        tenant=tenant, package=package, count=count, prefix=prefix, created_by=by
    )
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {_new_code(prefix) for _ in range(count - len(codes))}
        taken = set(Voucher.objects.filter(code__in=wanted).values_list("code", flat=True))
        codes |= wanted - taken
    Voucher.objects.bulk_create(
        Voucher(tenant=tenant, batch=batch, package=package, code=code) for code in sorted(codes)
    )
    signals.voucher_batch_created.send(sender=VoucherBatch, batch=batch, by=by)
    return batch


def _guess_key(client_ip: str) -> str:
    return f"voucher-guess:{client_ip or '-'}"


def _take_try(key: str, window: int) -> int:
    """Count one try for this address (atomic on the shared cache); the count with it."""
    if cache.add(key, 1, window):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        return 1


def _give_back(key: str) -> None:
    with contextlib.suppress(ValueError):  # expired meanwhile: nothing to give back
        cache.decr(key)


def voucher_redeem(
    *, tenant: Tenant, code: str, client_ip: str = "", handoff: dict[str, str] | None = None
) -> Voucher:
    """Redeem `code` at `tenant`'s portal: its hotspot user, exactly once.

    Unknown, other tenant's, used or disabled codes are refused with a clear reason; codes
    refused as unknown (guesses) are counted per client address and refused beyond
    PORTAL_VOUCHER_ATTEMPTS. The try is counted before the code is looked at (guesses sent at
    once cannot all pass a check made before any of them failed) and given back unless the
    code was unknown (a used or disabled code is not a guess: VoucherSpent).
    """
    window = settings.PORTAL_STK_LIMIT_WINDOW_SECONDS
    key = _guess_key(client_ip)
    if _take_try(key, window) > settings.PORTAL_VOUCHER_ATTEMPTS:
        _give_back(key)
        raise VoucherGuessing(
            _("Too many wrong codes from this device. Please wait a while before trying again.")
        )
    try:
        voucher = _redeem(tenant=tenant, code=normalize_code(code), handoff=handoff or {})
    except VoucherSpent:
        _give_back(key)
        raise
    except VoucherRefused:
        raise  # a wrong code: the try stays counted
    except BaseException:
        _give_back(key)
        raise
    _give_back(key)
    return voucher


@transaction.atomic
def _redeem(*, tenant: Tenant, code: str, handoff: dict[str, str]) -> Voucher:
    if tenant.status != Tenant.Status.ACTIVE:
        raise InvalidTransition(
            _("{name} is not selling WiFi access right now.").format(name=tenant.name)
        )
    voucher = Voucher.objects.filter(code=code, tenant=tenant).select_related("package").first()
    if not code or voucher is None:  # unknown, or another tenant's: the same answer
        raise VoucherRefused(_("That voucher code is not valid here. Check it and try again."))
    if voucher.status == Voucher.Status.DISABLED:
        raise VoucherSpent(_("That voucher has been disabled. Ask the attendant."))
    # The one claim: a conditional UPDATE, so two phones redeeming at once cannot both win.
    claimed = Voucher.objects.filter(pk=voucher.pk, status=Voucher.Status.UNUSED).update(
        status=Voucher.Status.USED, used_at=timezone.now(), handoff=handoff
    )
    if claimed != 1:
        raise VoucherSpent(_("That voucher has already been used."))
    hotspot_user: HotspotUser = hotspot_user_create(tenant=tenant, package=voucher.package, by=None)
    Voucher.objects.filter(pk=voucher.pk).update(hotspot_user=hotspot_user)
    voucher.refresh_from_db()
    signals.voucher_redeemed.send(
        sender=Voucher, voucher=voucher, hotspot_user=hotspot_user, by=None
    )
    return voucher


@transaction.atomic
def voucher_disable(*, voucher: Voucher, by: User) -> Voucher:
    """A tenant admin withdraws an unused code (lost, stolen, misprinted): the portal refuses it
    from now on. A used or already disabled one is refused (InvalidTransition)."""
    if not (by.is_system_admin or (by.is_tenant_admin and by.tenant_id == voucher.tenant_id)):
        raise PermissionDenied("Only the tenant's admins can disable vouchers.")
    if (
        Voucher.objects.filter(pk=voucher.pk, status=Voucher.Status.UNUSED).update(
            status=Voucher.Status.DISABLED
        )
        != 1
    ):
        raise InvalidTransition("Only an unused voucher can be disabled.")
    voucher.refresh_from_db()
    signals.voucher_disabled.send(sender=Voucher, voucher=voucher, by=by)
    return voucher


def voucher_find(*, user: User, code: Any) -> Voucher | None:
    """One of the vouchers `user` may see by its code as typed (case and dashes ignored)."""
    typed = normalize_code(code)
    if not typed:
        return None
    return Voucher.objects.for_user(user).filter(code=typed).first()
