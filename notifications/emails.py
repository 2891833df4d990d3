"""Domain signals → the emails the platform promises. Connected in NotificationsConfig.ready().

Each email is written in its recipient's language (User.language, else the default
LANGUAGE_CODE; people with different languages get one email per language). Each receiver runs
inside the service's transaction: it renders the email from its templates
(templates/emails/<kind>.txt and .html, the subject from <kind>_subject.txt) and stores it in
the outbox (notifications.mailer), which sends it after commit and retries on SMTP errors. A
receiver never fails the change: a bug in rendering is logged and the change goes through.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import signals as accounts
from tenants import signals as tenants

from . import mailer

logger = logging.getLogger(__name__)


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def language_of(user: Any) -> str:
    """The language a person's emails are written in: their choice, else the default."""
    return getattr(user, "language", "") or settings.LANGUAGE_CODE


def send(
    kind: str,
    to: Iterable[str],
    context: dict[str, Any],
    *,
    language: str | None = None,
    tenant: Any = None,
) -> None:
    """Render emails/<kind>* with `context` in `language` (default: LANGUAGE_CODE, never the
    language of whoever caused it) and queue it for `to` (after commit).

    Times in it are in `tenant`'s zone (its people's), else TIME_ZONE (system admins).
    """
    language = language or settings.LANGUAGE_CODE
    zone = tenant.tzinfo if tenant is not None else timezone.get_default_timezone()
    context = {
        "site_url": settings.SITE_URL,
        "login_url": absolute(reverse("accounts:login")),
        "LANGUAGE_CODE": language,
        **context,
    }
    with translation.override(language), timezone.override(zone):
        subject = render_to_string(f"emails/{kind}_subject.txt", context).strip()
        body_text = render_to_string(f"emails/{kind}.txt", context)
        body_html = render_to_string(f"emails/{kind}.html", context)
    mailer.queue(kind=kind, to=to, subject=subject, body_text=body_text, body_html=body_html)


def send_each(
    kind: str, to: Iterable[tuple[str, str]], context: dict[str, Any], *, tenant: Any = None
) -> None:
    """`send` to (address, language) pairs: one email per language."""
    by_language: dict[str, list[str]] = {}
    for address, language in to:
        if address:
            by_language.setdefault(language, []).append(address)
    for language, addresses in by_language.items():
        send(kind, addresses, context, language=language, tenant=tenant)


def never_fails(func: Callable[..., None]) -> Callable[..., None]:
    """An email is never a reason to roll a change back."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            logger.exception("email for %s not queued", func.__name__)

    return wrapper


def system_admin_addresses() -> list[tuple[str, str]]:
    """(address, language) of every system admin."""
    from accounts.models import User

    admins = User.objects.filter(role=User.Role.SYSTEM_ADMIN, is_active=True).exclude(email="")
    return [(u.email, language_of(u)) for u in admins.only("email", "language")]


def tenant_addresses(tenant: Any) -> list[tuple[str, str]]:
    """A tenant's contact address and its admins' addresses, with their languages (the
    contact address gets its first admin's)."""
    from accounts.models import User

    admins = list(
        User.objects.filter(tenant=tenant, role=User.Role.TENANT_ADMIN, is_active=True)
        .order_by("pk")
        .only("email", "language")
    )
    contact_language = language_of(admins[0]) if admins else settings.LANGUAGE_CODE
    return [(tenant.contact_email, contact_language)] + [
        (u.email, language_of(u)) for u in admins if u.email
    ]


def set_password_url(user: Any) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return absolute(reverse("accounts:set_password", args=[uid, token]))


# --- tenants -------------------------------------------------------------------------------


@receiver(tenants.tenant_registered, dispatch_uid="emails.tenant_registered")
@never_fails
def on_tenant_registered(sender: Any, tenant: Any, admin_user: Any = None, **kw: Any) -> None:
    context = {"tenant": tenant, "admin_user": admin_user}
    # The registrant's own language: the one the registration page was shown in.
    language = getattr(admin_user, "language", "") or translation.get_language()
    send(
        "registration_received",
        [tenant.contact_email, getattr(admin_user, "email", "")],
        context,
        language=language if language in dict(settings.LANGUAGES) else None,
        tenant=tenant,
    )
    send_each(
        "registration_admin",
        system_admin_addresses(),
        {**context, "review_url": absolute(reverse("tenants:system_tenants"))},
    )


@receiver(tenants.tenant_approved, dispatch_uid="emails.tenant_approved")
@never_fails
def on_tenant_approved(sender: Any, tenant: Any, **kw: Any) -> None:
    send_each("tenant_approved", tenant_addresses(tenant), {"tenant": tenant}, tenant=tenant)


@receiver(tenants.tenant_suspended, dispatch_uid="emails.tenant_suspended")
@never_fails
def on_tenant_suspended(sender: Any, tenant: Any, reason: str, **kw: Any) -> None:
    send_each(
        "tenant_suspended",
        tenant_addresses(tenant),
        {"tenant": tenant, "reason": reason},
        tenant=tenant,
    )


# --- accounts ------------------------------------------------------------------------------


@receiver(accounts.user_created, dispatch_uid="emails.user_created")
@never_fails
def on_user_created(sender: Any, user: Any, by: Any = None, **kw: Any) -> None:
    tenant = user.tenant
    if by is None and tenant is not None and tenant.status == tenant.Status.PENDING:
        return  # the public sign-up's own admin: they chose the password (registration email)
    send(
        "account_created",
        [user.email],
        {"user": user, "by": by, "set_password_url": set_password_url(user)},
        language=language_of(user),
        tenant=tenant,
    )


@receiver(accounts.password_changed, dispatch_uid="emails.password_changed")
@never_fails
def on_password_changed(sender: Any, user: Any, by: Any = None, **kw: Any) -> None:
    by_other = by is not None and by.pk != user.pk
    send(
        "password_changed",
        [user.email],
        {"user": user, "by": by if by_other else None},
        language=language_of(user),
        tenant=user.tenant,
    )


@receiver(accounts.sign_in_locked, dispatch_uid="emails.sign_in_locked")
@never_fails
def on_sign_in_locked(
    sender: Any,
    user: Any = None,
    username: str = "",
    address: str = "",
    until: Any = None,
    **kw: Any,
) -> None:
    if user is None:
        return  # an unknown username: nobody to tell
    send(
        "sign_in_locked",
        [user.email],
        {"user": user, "username": username, "address": address, "until": until},
        language=language_of(user),
        tenant=user.tenant,
    )
