"""The ONE place that declares every event type: name, category, level, title, message, payload
fields and audience. The server (receivers, fire_event), the browser's toast map and
docs/events.md (events/docs.py) are all derived from it; the payloads themselves are read from
the models in events/payloads.py, the only module of the event system that queries them.

An event type is a class; its `from_<object>()` builders return an :class:`Event` (plain data,
JSON-ready), which `notifications.events.broadcast.broadcast()` stores and publishes::

    broadcast(UserCreated.from_user(user))

Payloads hold ids, names, masked phones and ISO timestamps only: never model instances,
secrets, passwords or hashes (a test checks every builder against its declared fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from accounts.models import User
from config.money import format_money
from hotspot.models import HotspotSession, HotspotUser, Package, Router
from notifications.events import payloads
from notifications.realtime.groups import (
    SYSTEM_ADMIN_GROUP,
    payment_group,
    tenant_group,
    user_group,
)
from notifications.realtime.protocol import iso
from payments.models import Payment, SmsMessage, Voucher, VoucherBatch
from tenants.models import Tenant

LEVELS = ("success", "info", "warning", "error")
CATEGORIES = ("tenant", "user", "auth", "payment", "hotspot", "system")
ROLES = tuple(User.Role.values)


@dataclass(frozen=True)
class Target:
    """One channel-layer group an event goes to, and the roles within it (None: everyone)."""

    group: str
    roles: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "roles": list(self.roles) if self.roles else None}


@dataclass(frozen=True)
class Recipient:
    """An audience rule, resolved against an event's payload.

    scope: "tenant" → tenant.<data.tenant_id> (skipped when the payload has no tenant),
    "user" → user.<data.user_id> (skipped without a user), "system" → system.admin,
    "payment" → payment.<data.payment_id> (the paying customer's own portal socket),
    "all_tenants" → tenant.<id> of every active tenant, read when the event is built (its
    payload stays small and names no other tenant).
    when (system only): "always"; "no_tenant" (the subject has no tenant, e.g. a system
    admin's own account); "unaddressed" (no tenant and no user was given).
    """

    scope: str
    roles: tuple[str, ...] | None = None
    when: str = "always"

    def __post_init__(self) -> None:
        if self.scope not in ("tenant", "user", "system", "payment", "all_tenants"):
            raise ValueError(f"unknown audience scope {self.scope!r}")
        if self.roles and (self.scope != "tenant" or not set(self.roles) <= set(ROLES)):
            raise ValueError("roles narrow tenant groups only, and must be known roles")
        if self.when not in ("always", "no_tenant", "unaddressed"):
            raise ValueError(f"unknown condition {self.when!r}")

    def resolve_all(self, data: Mapping[str, Any]) -> list[Target]:
        """Every target of this rule (several for "all_tenants", else none or one)."""
        if self.scope == "all_tenants":
            return [Target(tenant_group(pk)) for pk in payloads.active_tenant_ids()]
        target = self.resolve(data)
        return [] if target is None else [target]

    def resolve(self, data: Mapping[str, Any]) -> Target | None:
        if self.scope == "all_tenants":
            raise ValueError("an all_tenants rule has several targets: use resolve_all()")
        if self.scope == "tenant":
            tenant_id = data.get("tenant_id")
            return None if tenant_id is None else Target(tenant_group(tenant_id), self.roles)
        if self.scope == "user":
            user_id = data.get("user_id")
            return None if user_id is None else Target(user_group(user_id))
        if self.scope == "payment":
            payment_id = data.get("payment_id")
            return None if payment_id is None else Target(payment_group(payment_id))
        if self.when == "no_tenant" and data.get("tenant_id") is not None:
            return None
        if self.when == "unaddressed" and (
            data.get("tenant_id") is not None or data.get("user_id") is not None
        ):
            return None
        return Target(SYSTEM_ADMIN_GROUP)

    def describe(self) -> str:
        if self.scope == "tenant":
            who = " and ".join(r.replace("_", " ") + "s" for r in self.roles or ()) or "everyone"
            return f"`tenant.<tenant_id>` ({who})"
        if self.scope == "user":
            return "`user.<user_id>` (that person)"
        if self.scope == "payment":
            return "`payment.<payment_id>` (the paying customer's portal socket)"
        if self.scope == "all_tenants":
            return "`tenant.<id>` of every active tenant (everyone)"
        suffix = {
            "always": "",
            "no_tenant": " (when the subject has no tenant)",
            "unaddressed": " (when neither a tenant nor a user is given)",
        }[self.when]
        return f"`system.admin`{suffix}"


TENANT_MEMBERS = Recipient("tenant")
TENANT_ADMINS = Recipient("tenant", roles=("tenant_admin",))
THE_USER = Recipient("user")
SYSTEM_ADMINS = Recipient("system")
SYSTEM_ADMINS_IF_NO_TENANT = Recipient("system", when="no_tenant")
THE_PAYING_CUSTOMER = Recipient("payment")
EVERY_TENANT = Recipient("all_tenants")


@dataclass
class Event:
    """One occurrence of an event type, ready to store and publish (JSON-only payload)."""

    name: str
    category: str
    level: str
    title: str
    message: str
    data: dict[str, Any]
    targets: list[Target]
    occurred_at: datetime = field(default_factory=timezone.now)
    #: {language: {"title", "message"}} for every other language of settings.LANGUAGES, so each
    #: page shows the toast in its own user's language with no work per socket (the frame's
    #: `titles` / `messages`); a free-text title or message stays as written
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        return [target.group for target in self.targets]


def message_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a message template may name: the payload, plus `{money}` (its amount written in
    its currency, config.money: "NGN 1,500.00") when the payload has both."""
    if "amount" in data and "currency" in data:
        return {**data, "money": format_money(data["amount"], data["currency"])}
    return dict(data)


class EventType:
    """Base of every catalog entry; subclasses set the class attributes and add builders."""

    name: ClassVar[str]
    category: ClassVar[str]
    level: ClassVar[str]
    title: ClassVar[str]
    template: ClassVar[str]
    #: payload field → what it holds (documented in docs/events.md; builders must match)
    fields: ClassVar[dict[str, str]]
    audience: ClassVar[tuple[Recipient, ...]]
    #: the model whose id `fire_event --object ID` takes (None: system events)
    model: ClassVar[type[models.Model] | None] = None
    description: ClassVar[str] = ""
    #: how long the browser shows its toast; None: the level's time (5/5/6/7 s)
    toast_ms: ClassVar[int | None] = None

    registry: ClassVar[dict[str, type[EventType]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):  # shared bases of a family, not event types
            return
        cls.name = cls.__name__
        if cls.category not in CATEGORIES or cls.level not in LEVELS:
            raise TypeError(f"{cls.name}: unknown category or level")
        EventType.registry[cls.name] = cls

    @classmethod
    def build(
        cls,
        data: dict[str, Any],
        *,
        title: str | None = None,
        message: str | None = None,
        level: str | None = None,
    ) -> Event:
        """An Event of this type from its payload; the audience follows from the payload."""
        mismatch = set(cls.fields) ^ set(data)
        if mismatch:
            raise TypeError(f"{cls.name} payload does not match its fields: {sorted(mismatch)}")
        if level is not None and level not in LEVELS:
            raise ValueError(f"Unknown level {level!r}; use one of {', '.join(LEVELS)}.")
        targets = [t for r in cls.audience for t in r.resolve_all(data)]
        with translation.override(settings.LANGUAGE_CODE):  # `message`: the source language
            default = cls.template.format_map(cls.message_params(data))
        return Event(
            name=cls.name,
            category=cls.category,
            level=level or cls.level,
            title=title or cls.title,
            message=message or default,
            data=data,
            targets=targets,
            translations=cls.translate(data, title=title, message=message),
        )

    @classmethod
    def message_params(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """The values the message template is filled with, in the active language (a payload
        value that is a word, e.g. a reason code, is translated here; `{money}` is the amount
        written in its currency)."""
        return message_fields(data)

    @classmethod
    def translate(
        cls, data: Mapping[str, Any], *, title: str | None = None, message: str | None = None
    ) -> dict[str, dict[str, str]]:
        """The title and message in every non-default language (locale/*/django.po).

        A hand-written title or message is the sender's words: kept as written. A language
        whose translation does not fit the payload (a bad placeholder) falls back to English.
        """
        if title and message:
            return {}
        out: dict[str, dict[str, str]] = {}
        for code, _name in settings.LANGUAGES:
            if code == settings.LANGUAGE_CODE:
                continue
            with translation.override(code):
                try:
                    text = message or gettext(cls.template).format_map(cls.message_params(data))
                except (KeyError, IndexError, ValueError):
                    text = message or cls.template.format_map(message_fields(data))
                out[code] = {"title": title or gettext(cls.title), "message": text}
        return out

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        """Build from an instance of `model` (used by `fire_event --object ID`)."""
        raise NotImplementedError

    @classmethod
    def audience_text(cls) -> str:
        return "; ".join(r.describe() for r in cls.audience)


# --- payload pieces ------------------------------------------------------------------------

TENANT_FIELDS = {
    "tenant_id": "id of the tenant",
    "tenant_name": "the tenant's name",
    "tenant_slug": "the tenant's short name",
    "status": "the tenant's status after the change (pending/active/suspended)",
}
USER_FIELDS = {
    "user_id": "id of the account",
    "username": "its username",
    "full_name": "display name (full name, else username)",
    "role": "system_admin / tenant_admin / staff",
    "tenant_id": "the account's tenant id (null for system admins)",
}
PAYMENT_FIELDS = {
    "payment_id": "id of the payment",
    "tenant_id": "id of the tenant paid",
    "reference": "the provider's reference",
    "amount": 'amount as a decimal string, e.g. "50.00"',
    "currency": "ISO currency code",
    "phone": "the payer's phone, masked (2547****678)",
    "package_id": "id of the package bought",
    "package_name": "name of the package bought",
}
HOTSPOT_USER_FIELDS = {
    "hotspot_user_id": "id of the hotspot user",
    "tenant_id": "id of its tenant",
    "username": "router login name (never the password)",
    "package_id": "id of its package",
    "package_name": "name of its package",
    "phone": "customer phone, masked",
    "expires_at": "ISO time the access ends",
}
PACKAGE_FIELDS = {
    "package_id": "id of the package",
    "tenant_id": "id of its tenant",
    "name": "package name",
    "price": "price as a decimal string",
    "currency": "ISO currency code",
    "duration_minutes": "access time sold",
    "is_active": "on sale or not",
}


CHANGED = {"changed": "names of the fields that changed"}


# --- tenant --------------------------------------------------------------------------------


class _TenantEvent(EventType):
    category = "tenant"
    level = "info"
    model = Tenant
    fields = TENANT_FIELDS
    audience = (TENANT_MEMBERS, SYSTEM_ADMINS)

    @classmethod
    def from_tenant(cls, tenant: Tenant) -> Event:
        return cls.build(payloads.tenant_data(tenant))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_tenant(obj)


class TenantCreated(_TenantEvent):
    level = "success"
    title = gettext_noop("Tenant Created")
    template = gettext_noop("{tenant_name} has been created.")
    audience = (SYSTEM_ADMINS,)
    description = "A system admin created a tenant directly."


class TenantUpdated(_TenantEvent):
    title = gettext_noop("Tenant Updated")
    template = gettext_noop("{tenant_name}'s details have been updated.")
    fields = {**TENANT_FIELDS, **CHANGED}
    audience = (TENANT_ADMINS, SYSTEM_ADMINS)
    description = "Contact details changed (by a system admin or the tenant's own admin)."

    @classmethod
    def from_tenant(cls, tenant: Tenant, changed: list[str] | None = None) -> Event:
        return cls.build({**payloads.tenant_data(tenant), "changed": list(changed or [])})


class PaymentSecretRotated(_TenantEvent):
    level = "warning"
    title = gettext_noop("Payment Secret Rotated")
    template = gettext_noop(
        "{tenant_name}'s payment callback secret has been replaced; callbacks signed with the "
        "old one are refused."
    )
    audience = (TENANT_ADMINS, SYSTEM_ADMINS)
    description = "A tenant admin rotated the payment callback secret (never in the payload)."


class TenantApproved(_TenantEvent):
    level = "success"
    title = gettext_noop("Tenant Approved")
    template = gettext_noop("{tenant_name} has been approved and is now active.")


class TenantSuspended(_TenantEvent):
    level = "error"
    title = gettext_noop("Tenant Suspended")
    template = gettext_noop("{tenant_name} has been suspended: {reason}")
    fields = {**TENANT_FIELDS, "reason": "why (shown to the tenant)"}
    description = "The tenant's sockets are closed too (4403)."

    @classmethod
    def from_tenant(cls, tenant: Tenant, reason: str | None = None) -> Event:
        return cls.build(
            {**payloads.tenant_data(tenant), "reason": reason or tenant.suspension_reason}
        )


class TenantReactivated(_TenantEvent):
    level = "success"
    title = gettext_noop("Tenant Reactivated")
    template = gettext_noop("{tenant_name} has been reactivated.")


class TenantRegistered(_TenantEvent):
    category = "system"
    title = gettext_noop("Tenant Registered")
    toast_ms = 8000  # stays longer than its level: it needs reading (issue 4)
    template = gettext_noop("{tenant_name} has registered and is awaiting approval.")
    fields = {
        **TENANT_FIELDS,
        "admin_user_id": "id of the tenant admin created with it (null if none)",
        "admin_username": "that admin's username",
    }
    audience = (SYSTEM_ADMINS,)
    description = "Public sign-up; system admins only (the tenant cannot sign in yet)."

    @classmethod
    def from_tenant(cls, tenant: Tenant, admin_user: User | None = None) -> Event:
        if admin_user is None:
            admin_user = payloads.first_tenant_admin(tenant)
        return cls.build(
            {
                **payloads.tenant_data(tenant),
                "admin_user_id": admin_user.pk if admin_user else None,
                "admin_username": admin_user.username if admin_user else "",
            }
        )


# --- user ----------------------------------------------------------------------------------


class _UserEvent(EventType):
    category = "user"
    level = "info"
    model = User
    fields = USER_FIELDS
    audience = (TENANT_ADMINS, SYSTEM_ADMINS_IF_NO_TENANT)

    @classmethod
    def from_user(cls, user: User) -> Event:
        return cls.build(payloads.user_data(user))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_user(obj)


class UserCreated(_UserEvent):
    level = "success"
    title = gettext_noop("User Created")
    template = gettext_noop("{full_name} has been added to the system.")


class UserUpdated(_UserEvent):
    title = gettext_noop("User Updated")
    template = gettext_noop("{full_name}'s account has been updated.")
    fields = {**USER_FIELDS, **CHANGED}
    audience = (TENANT_ADMINS, THE_USER, SYSTEM_ADMINS_IF_NO_TENANT)
    description = "Profile or role changed; the person is told too."

    @classmethod
    def from_user(cls, user: User, changed: list[str] | None = None) -> Event:
        return cls.build({**payloads.user_data(user), "changed": list(changed or [])})


class UserDeleted(_UserEvent):
    level = "warning"
    title = gettext_noop("User Deleted")
    template = gettext_noop("{full_name} has been removed from the system.")
    description = "The account is gone; its sockets are closed (4403)."

    @classmethod
    def from_snapshot(
        cls, *, user_id: int, username: str, full_name: str, tenant_id: int | None, role: str
    ) -> Event:
        """From the accounts.user_deleted signal's keyword arguments (the row is gone)."""
        return cls.build(
            {
                "user_id": user_id,
                "username": username,
                "full_name": full_name,
                "role": role,
                "tenant_id": tenant_id,
            }
        )


# --- auth ----------------------------------------------------------------------------------


class PasswordChanged(_UserEvent):
    category = "auth"
    title = gettext_noop("Password Changed")
    template = gettext_noop("Your password has been changed.")
    fields = {"user_id": "id of the account", "username": "its username"}
    audience = (THE_USER,)
    description = "That person only (their other tabs and devices)."

    @classmethod
    def from_user(cls, user: User) -> Event:
        return cls.build({"user_id": user.pk, "username": user.username})


class AccountSuspended(_UserEvent):
    category = "auth"
    level = "warning"
    title = gettext_noop("Account Suspended")
    toast_ms = 8000  # stays longer than its level: it needs reading (issue 4)
    template = gettext_noop("{full_name}'s account has been suspended: {reason}")
    fields = {
        **USER_FIELDS,
        "reason": "why",
        "until": "ISO end of a temporary lockout, or null (until reactivated)",
        "lockout": "true for the automatic failed-sign-in lockout",
    }
    audience = (THE_USER, TENANT_ADMINS, SYSTEM_ADMINS_IF_NO_TENANT)
    description = "The person's sockets are closed too (4403)."

    @classmethod
    def from_user(
        cls,
        user: User,
        reason: str | None = None,
        until: datetime | None = None,
        lockout: bool = False,
    ) -> Event:
        return cls.build(
            {
                **payloads.user_data(user),
                "reason": reason or user.suspension_reason,
                "until": iso(until if until is not None else user.suspended_until),
                "lockout": bool(lockout),
            }
        )


class AccountActivated(_UserEvent):
    category = "auth"
    level = "success"
    title = gettext_noop("Account Activated")
    template = gettext_noop("{full_name}'s account has been activated.")
    audience = (THE_USER, TENANT_ADMINS, SYSTEM_ADMINS_IF_NO_TENANT)


# --- payment -------------------------------------------------------------------------------


class _PaymentEvent(EventType):
    category = "payment"
    level = "info"
    model = Payment
    fields = PAYMENT_FIELDS
    audience = (TENANT_MEMBERS,)

    @classmethod
    def from_payment(cls, payment: Payment) -> Event:
        return cls.build(payloads.payment_data(payment))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_payment(obj)


class PaymentInitiated(_PaymentEvent):
    title = gettext_noop("Payment Started")
    template = gettext_noop("{phone} started paying {money} for {package_name}.")
    description = "A customer started paying (pending); for live counters."


class PaymentCompleted(_PaymentEvent):
    level = "success"
    title = gettext_noop("Payment Received")
    template = gettext_noop("Payment {reference} of {money} from {phone} has been received.")
    fields = {
        **PAYMENT_FIELDS,
        "hotspot_user_id": "id of the hotspot user provisioned for it (null if none)",
        "hotspot_username": "its router login name",
        "completed_at": "ISO time",
    }

    @classmethod
    def from_payment(cls, payment: Payment, hotspot_user: HotspotUser | None = None) -> Event:
        if hotspot_user is None:
            hotspot_user = payloads.hotspot_user_of(payment)
        return cls.build(
            {
                **payloads.payment_data(payment),
                "hotspot_user_id": hotspot_user.pk if hotspot_user else None,
                "hotspot_username": hotspot_user.username if hotspot_user else "",
                "completed_at": iso(payment.completed_at),
            }
        )


class PaymentFailed(_PaymentEvent):
    level = "error"
    title = gettext_noop("Payment Failed")
    template = gettext_noop("Payment {reference} of {money} from {phone} failed: {reason}")
    fields = {**PAYMENT_FIELDS, "reason": "the provider's reason", "failed_at": "ISO time"}

    @classmethod
    def from_payment(cls, payment: Payment, reason: str | None = None) -> Event:
        return cls.build(
            {
                **payloads.payment_data(payment),
                "reason": reason or payment.failure_reason or "Declined by the provider.",
                "failed_at": iso(payment.failed_at),
            }
        )


# --- hotspot -------------------------------------------------------------------------------


class _HotspotUserEvent(EventType):
    category = "hotspot"
    level = "info"
    model = HotspotUser
    fields = HOTSPOT_USER_FIELDS
    audience = (TENANT_MEMBERS,)

    @classmethod
    def from_hotspot_user(cls, hotspot_user: HotspotUser) -> Event:
        return cls.build(payloads.hotspot_user_data(hotspot_user))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_hotspot_user(obj)


class HotspotUserCreated(_HotspotUserEvent):
    level = "success"
    title = gettext_noop("Hotspot User Created")
    template = gettext_noop("Hotspot user {username} has been created ({package_name}).")
    fields = {**HOTSPOT_USER_FIELDS, "payment_id": "id of the payment it was sold by, or null"}

    @classmethod
    def from_hotspot_user(cls, hotspot_user: HotspotUser) -> Event:
        return cls.build(
            {**payloads.hotspot_user_data(hotspot_user), "payment_id": hotspot_user.payment_id}
        )


class HotspotUserExpired(_HotspotUserEvent):
    level = "warning"
    title = gettext_noop("Hotspot User Expired")
    template = gettext_noop("Hotspot user {username}'s {package_name} access has expired.")


class HotspotUserDisabled(_HotspotUserEvent):
    level = "warning"
    title = gettext_noop("Hotspot User Disabled")
    template = gettext_noop("Hotspot user {username} has been disabled.")


class _PackageEvent(EventType):
    category = "hotspot"
    level = "info"
    model = Package
    fields = PACKAGE_FIELDS
    audience = (TENANT_MEMBERS,)

    @classmethod
    def from_package(cls, package: Package) -> Event:
        return cls.build(payloads.package_data(package))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_package(obj)


class PackageCreated(_PackageEvent):
    level = "success"
    title = gettext_noop("Package Created")
    template = gettext_noop("Package {name} is now available.")


class PackageUpdated(_PackageEvent):
    title = gettext_noop("Package Updated")
    template = gettext_noop("Package {name} has been updated.")
    fields = {**PACKAGE_FIELDS, **CHANGED}

    @classmethod
    def from_package(cls, package: Package, changed: list[str] | None = None) -> Event:
        return cls.build({**payloads.package_data(package), "changed": list(changed or [])})


# --- routers and RADIUS sessions (hotspot/radius.py, hotspot/coa.py) ------------------------

ROUTER_EVENT_FIELDS = {
    "router_id": "id of the router",
    "tenant_id": "id of its tenant",
    "name": "the router's name",
    "address": "the address its RADIUS requests come from",
    "last_seen": "ISO time FreeRADIUS last heard from it, or null",
}
SESSION_EVENT_FIELDS = {
    "session_id": "id of the hotspot session",
    "tenant_id": "id of its tenant",
    "router_id": "id of the router holding it (null if removed)",
    "router_name": "that router's name",
    "username": "the hotspot user's login name",
    "mac": "the customer device's MAC (Calling-Station-Id)",
    "ip": "the address the router gave the device, or null",
    "status": "active / closed / stale",
    "started_at": "ISO time the session began",
    "input_octets": "octets from the customer so far",
    "output_octets": "octets to the customer so far",
    "terminate_cause": "Acct-Terminate-Cause once ended",
    "disconnect": "Disconnect-Request state: '', sent, acked, naked, no_answer",
}


class _RouterEvent(EventType):
    category = "hotspot"
    level = "info"
    model = Router
    fields = ROUTER_EVENT_FIELDS
    audience = (TENANT_ADMINS,)

    @classmethod
    def from_router(cls, router: Router) -> Event:
        return cls.build(payloads.router_data(router))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_router(obj)


class RouterAdded(_RouterEvent):
    level = "success"
    title = gettext_noop("Router Added")
    template = gettext_noop("Router {name} ({address}) has been added.")


class RouterRemoved(_RouterEvent):
    level = "warning"
    title = gettext_noop("Router Removed")
    template = gettext_noop("Router {name} ({address}) has been removed.")


class RouterFirstSeen(_RouterEvent):
    level = "success"
    title = gettext_noop("Router Online")
    template = gettext_noop(
        "Router {name} ({address}) has contacted the RADIUS server for the first time."
    )


class RouterSilent(_RouterEvent):
    level = "warning"
    title = gettext_noop("Router Not Heard From")
    template = gettext_noop(
        "Router {name} ({address}) has not contacted the RADIUS server for a while."
    )
    description = "Sent once per silence by the periodic task (RADIUS_ROUTER_SILENT_AFTER)."


class _SessionEvent(EventType):
    category = "hotspot"
    level = "info"
    model = HotspotSession
    fields = SESSION_EVENT_FIELDS
    audience = (TENANT_MEMBERS,)

    @classmethod
    def from_session(cls, session: HotspotSession) -> Event:
        return cls.build(payloads.session_data(session))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_session(obj)


class HotspotSessionStarted(_SessionEvent):
    title = gettext_noop("Hotspot Session Started")
    template = gettext_noop("{username} is online on {router_name}.")


class HotspotSessionEnded(_SessionEvent):
    title = gettext_noop("Hotspot Session Ended")
    template = gettext_noop("{username} went offline on {router_name}.")


class DisconnectFailed(_SessionEvent):
    level = "error"
    title = gettext_noop("Disconnect Failed")
    template = gettext_noop("Router {router_name} did not disconnect {username}: {reason}.")
    fields = {**SESSION_EVENT_FIELDS, "reason": "nak (the router refused) or no_answer"}

    @classmethod
    def from_session(cls, session: HotspotSession, reason: str = "no_answer") -> Event:
        return cls.build({**payloads.session_data(session), "reason": reason})


class DataLimitWarning(_HotspotUserEvent):
    level = "warning"
    title = gettext_noop("Data Limit Almost Used")
    template = gettext_noop(
        # a brace template: "%" is a percent sign, not a %-format directive
        # xgettext:no-python-format
        "Hotspot user {username} has used {percent}% of the {package_name} data."
    )
    fields = {
        **HOTSPOT_USER_FIELDS,
        "percent": "share of the data limit used",
        "data_used_mb": "data used so far, MB",
        "data_limit_mb": "the package's data limit, MB",
    }

    @classmethod
    def from_hotspot_user(cls, hotspot_user: HotspotUser, percent: int = 80) -> Event:
        return cls.build(
            {
                **payloads.hotspot_user_data(hotspot_user),
                "percent": percent,
                "data_used_mb": hotspot_user.data_used_mb,
                "data_limit_mb": hotspot_user.package.data_limit_mb,
            }
        )


class HotspotUserCutOff(_HotspotUserEvent):
    level = "warning"
    title = gettext_noop("Hotspot User Cut Off")
    template = gettext_noop("Hotspot user {username} has been cut off: {reason_text}.")
    fields = {
        **HOTSPOT_USER_FIELDS,
        "reason": "data (the data limit is used up) or time (the access expired)",
        "reason_text": "the reason in words",
    }

    reasons: ClassVar[dict[str, str]] = {
        "data": gettext_noop("data used up"),
        "time": gettext_noop("time over"),
    }

    @classmethod
    def from_hotspot_user(cls, hotspot_user: HotspotUser, reason: str = "data") -> Event:
        text = cls.reasons.get(reason, reason)
        return cls.build(
            {**payloads.hotspot_user_data(hotspot_user), "reason": reason, "reason_text": text}
        )

    @classmethod
    def message_params(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        reason = data.get("reason")
        if reason in cls.reasons:
            return {**data, "reason_text": gettext(cls.reasons[reason])}
        return data


# --- the customer's portal, vouchers and SMS (payments/) ----------------------------------


class PortalPaymentUpdated(EventType):
    """Tells the customer's portal socket that its payment changed; the socket then sends the
    customer a `payment` frame built from the payment (credentials never travel in events)."""

    category = "payment"
    level = "info"
    title = gettext_noop("Payment Updated")
    template = gettext_noop("Your payment is {state}.")
    model = Payment
    fields = {
        "payment_id": "id of the payment",
        "tenant_id": "id of the tenant paid",
        "state": "pending / completed / failed",
    }
    audience = (THE_PAYING_CUSTOMER,)
    description = (
        "The paying customer's own channel (the portal socket `/ws/portal/?token=`); staff "
        "get PaymentInitiated / PaymentCompleted / PaymentFailed."
    )

    @classmethod
    def from_payment(cls, payment: Payment) -> Event:
        return cls.build(
            {"payment_id": payment.pk, "tenant_id": payment.tenant_id, "state": payment.status}
        )

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_payment(obj)


class _VoucherEvent(EventType):
    category = "payment"
    level = "info"
    audience = (TENANT_MEMBERS,)

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        if isinstance(obj, VoucherBatch):
            return cls.from_batch(obj)
        return cls.from_voucher(obj, obj.hotspot_user)


class VoucherBatchCreated(_VoucherEvent):
    model = VoucherBatch
    title = gettext_noop("Vouchers Created")
    template = gettext_noop("{count} vouchers for {package_name} have been created.")
    fields = {
        "batch_id": "id of the voucher batch",
        "tenant_id": "id of its tenant",
        "package_id": "id of the package",
        "package_name": "name of the package",
        "count": "how many vouchers",
    }

    @classmethod
    def from_batch(cls, batch: VoucherBatch) -> Event:
        return cls.build(payloads.voucher_batch_data(batch))


class VoucherRedeemed(_VoucherEvent):
    model = Voucher
    level = "success"
    title = gettext_noop("Voucher Redeemed")
    template = gettext_noop("A {package_name} voucher has been redeemed ({hotspot_username}).")
    fields = {
        "voucher_id": "id of the voucher (never its code)",
        "batch_id": "id of its batch",
        "tenant_id": "id of its tenant",
        "package_id": "id of the package",
        "package_name": "name of the package",
        "hotspot_user_id": "id of the hotspot user it gave",
        "hotspot_username": "its router login name",
    }

    @classmethod
    def from_voucher(cls, voucher: Voucher, hotspot_user: HotspotUser) -> Event:
        return cls.build(payloads.voucher_data(voucher, hotspot_user))


class SmsDeliveryFailed(EventType):
    category = "payment"
    level = "warning"
    title = gettext_noop("SMS Not Delivered")
    template = gettext_noop("The login SMS to {phone} could not be delivered: {error}")
    model = SmsMessage
    fields = {
        "sms_id": "id of the message",
        "tenant_id": "id of the tenant",
        "payment_id": "id of the payment it was for (or null)",
        "phone": "the customer's phone, masked",
        "attempts": "how many times it was tried",
        "error": "the gateway's last answer",
    }
    audience = (TENANT_MEMBERS,)
    description = "The purchase stands; tell the customer their login another way."

    @classmethod
    def from_sms(cls, message: SmsMessage) -> Event:
        return cls.build(payloads.sms_data(message))

    @classmethod
    def from_object(cls, obj: Any) -> Event:
        return cls.from_sms(obj)


# --- system --------------------------------------------------------------------------------


class _SystemEvent(EventType):
    category = "system"
    fields = {
        "tenant_id": "the tenant addressed, or null",
        "user_id": "the person addressed, or null",
    }
    audience = (
        Recipient("tenant"),
        Recipient("user"),
        Recipient("system", when="unaddressed"),
    )

    @classmethod
    def create(
        cls,
        *,
        message: str | None = None,
        title: str | None = None,
        level: str | None = None,
        tenant: Tenant | None = None,
        user: User | None = None,
        by: User | None = None,
    ) -> Event:
        """A hand-written notice (fire_event, the shell, an announcement); `_data` addresses it."""
        return cls.build(cls._data(tenant, user, by), title=title, message=message, level=level)

    @classmethod
    def _data(cls, tenant: Tenant | None, user: User | None, by: User | None) -> dict[str, Any]:
        """To system.admin, or to a tenant and/or a person if given."""
        if by is not None:
            raise ValueError(f"{cls.name} names whom it addresses, not who sent it: no by.")
        return {"tenant_id": tenant.pk if tenant else None, "user_id": user.pk if user else None}


class SystemNotification(_SystemEvent):
    level = "info"
    title = gettext_noop("System Notification")
    template = gettext_noop("A message from the platform team.")
    description = "Free text from the platform team (fire_event / shell)."


class SystemAlert(_SystemEvent):
    level = "warning"
    title = gettext_noop("System Alert")
    toast_ms = 8000  # stays longer than its level: it needs reading (issue 4)
    template = gettext_noop("The platform needs attention.")
    description = "Operational alert from the platform (fire_event / shell / monitoring)."


class PlatformAnnouncement(_SystemEvent):
    """A system admin's notice to every tenant's users (/system/announce/, `fire_event
    PlatformAnnouncement` or `fire_event SystemNotification --all-tenants`)."""

    category = "system"
    level = "info"
    title = gettext_noop("Platform Announcement")
    toast_ms = 8000  # a notice to read, e.g. planned maintenance (as SystemAlert)
    template = gettext_noop("A message from the platform team.")
    description = "A system admin's announcement to the users of every active tenant."
    fields = {"by_user_id": "id of the system admin who sent it, or null (the shell)"}
    audience = (EVERY_TENANT, SYSTEM_ADMINS)

    @classmethod
    def _data(cls, tenant: Tenant | None, user: User | None, by: User | None) -> dict[str, Any]:
        """It goes to every tenant, so it takes no tenant or person; `by`: who sent it."""
        if tenant is not None or user is not None:
            raise ValueError("A platform announcement goes to every tenant: no tenant or user.")
        return {"by_user_id": by.pk if by else None}


#: name → event type, in declaration order (the catalog)
CATALOG: dict[str, type[EventType]] = dict(EventType.registry)


def get(name: str) -> type[EventType]:
    """The event type called `name` (KeyError with the known names otherwise)."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"Unknown event {name!r}. Known events: {', '.join(CATALOG)}.") from None
