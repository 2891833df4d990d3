"""Domain signals → what notifications does about them: ONE table, connected in ready().

`EVENTS`: each domain signal and the catalog builder that turns its arguments into an event,
which `broadcast()` stores in the service's transaction (it commits or rolls back with the
change) and publishes after commit. `CLOSES`: the signals after which someone loses access and
their sockets are closed (notifications.realtime.revocation), also after commit.

A new event type: declare it in events/catalog.py, send the domain app's signal from its
service, and add one row here (docs/architecture.md). tests/notifications/test_receivers.py
checks that every catalog event with a signal reaches its audience.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import Signal

from accounts import signals as accounts
from hotspot import signals as hotspot
from notifications.events import catalog
from notifications.events.broadcast import broadcast
from notifications.realtime import revocation
from payments import signals as payments
from tenants import signals as tenants


@dataclass(frozen=True)
class Route:
    """signal → builder: `build(kwargs[subject], **{name: kwargs[name] for name in options})`.

    `subject` is the signal argument the builder takes first (None: keywords only); `options`
    are passed on when the signal sends them (otherwise the builder's default applies).
    """

    signal: Signal
    build: Callable[..., catalog.Event]
    subject: str | None = None
    options: tuple[str, ...] = ()

    def event(self, **kwargs: Any) -> catalog.Event:
        args = [kwargs[self.subject]] if self.subject else []
        return self.build(*args, **{k: kwargs[k] for k in self.options if k in kwargs})

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        broadcast(self.event(**kwargs))

    @property
    def uid(self) -> str:
        return f"notifications.{self.build.__self__.__name__}"  # type: ignore[attr-defined]


C = catalog
EVENTS: tuple[Route, ...] = (
    # tenants
    Route(tenants.tenant_registered, C.TenantRegistered.from_tenant, "tenant", ("admin_user",)),
    Route(tenants.tenant_created, C.TenantCreated.from_tenant, "tenant"),
    Route(tenants.tenant_updated, C.TenantUpdated.from_tenant, "tenant", ("changed",)),
    Route(tenants.tenant_approved, C.TenantApproved.from_tenant, "tenant"),
    Route(tenants.tenant_suspended, C.TenantSuspended.from_tenant, "tenant", ("reason",)),
    Route(tenants.tenant_reactivated, C.TenantReactivated.from_tenant, "tenant"),
    Route(tenants.tenant_payment_secret_rotated, C.PaymentSecretRotated.from_tenant, "tenant"),
    # accounts
    Route(accounts.user_created, C.UserCreated.from_user, "user"),
    Route(accounts.user_updated, C.UserUpdated.from_user, "user", ("changed",)),
    Route(
        accounts.user_deleted,
        C.UserDeleted.from_snapshot,
        None,
        ("user_id", "username", "full_name", "tenant_id", "role"),
    ),
    Route(accounts.password_changed, C.PasswordChanged.from_user, "user"),
    Route(
        accounts.account_suspended,
        C.AccountSuspended.from_user,
        "user",
        ("reason", "until", "lockout"),
    ),
    Route(accounts.account_activated, C.AccountActivated.from_user, "user"),
    # payments
    Route(payments.payment_initiated, C.PaymentInitiated.from_payment, "payment"),
    Route(
        payments.payment_completed, C.PaymentCompleted.from_payment, "payment", ("hotspot_user",)
    ),
    Route(payments.payment_failed, C.PaymentFailed.from_payment, "payment", ("reason",)),
    # hotspot
    Route(hotspot.package_created, C.PackageCreated.from_package, "package"),
    Route(hotspot.package_updated, C.PackageUpdated.from_package, "package", ("changed",)),
    Route(hotspot.hotspot_user_created, C.HotspotUserCreated.from_hotspot_user, "hotspot_user"),
    Route(hotspot.hotspot_user_expired, C.HotspotUserExpired.from_hotspot_user, "hotspot_user"),
    Route(hotspot.hotspot_user_disabled, C.HotspotUserDisabled.from_hotspot_user, "hotspot_user"),
    # routers and RADIUS sessions
    Route(hotspot.router_added, C.RouterAdded.from_router, "router"),
    Route(hotspot.router_removed, C.RouterRemoved.from_router, "router"),
    Route(hotspot.router_first_seen, C.RouterFirstSeen.from_router, "router"),
    Route(hotspot.router_silent, C.RouterSilent.from_router, "router"),
    Route(hotspot.session_started, C.HotspotSessionStarted.from_session, "session"),
    Route(hotspot.session_ended, C.HotspotSessionEnded.from_session, "session"),
    Route(hotspot.disconnect_failed, C.DisconnectFailed.from_session, "session", ("reason",)),
    Route(
        hotspot.data_limit_warning,
        C.DataLimitWarning.from_hotspot_user,
        "hotspot_user",
        ("percent",),
    ),
    Route(
        hotspot.hotspot_user_cut_off,
        C.HotspotUserCutOff.from_hotspot_user,
        "hotspot_user",
        ("reason",),
    ),
    # the customer's portal: each payment change also reaches the customer's own socket
    Route(payments.payment_initiated, C.PortalPaymentUpdated.from_payment, "payment"),
    Route(payments.payment_completed, C.PortalPaymentUpdated.from_payment, "payment"),
    Route(payments.payment_failed, C.PortalPaymentUpdated.from_payment, "payment"),
    # vouchers and SMS
    Route(payments.voucher_batch_created, C.VoucherBatchCreated.from_batch, "batch"),
    Route(payments.voucher_redeemed, C.VoucherRedeemed.from_voucher, "voucher", ("hotspot_user",)),
    Route(payments.sms_failed, C.SmsDeliveryFailed.from_sms, "message"),
)


# --- lost access → close the sockets (after commit) -------------------------------------------


def _logged_out(sender: Any, request: Any = None, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        revocation.close_session(key)


def _account_suspended(sender: Any, user: Any, **kwargs: Any) -> None:
    revocation.close_user(user.pk, "Account suspended.")


def _user_deleted(sender: Any, user_id: int, **kwargs: Any) -> None:
    revocation.close_user(user_id, "Account deleted.")


def _user_updated(sender: Any, user: Any, changed: list[str], **kwargs: Any) -> None:
    if "role" in changed:  # a new role changes which events the user may see
        revocation.reconnect_user(user.pk, "Role changed; reconnect.")


def _password_changed(sender: Any, user: Any, **kwargs: Any) -> None:
    """Tokens and other sessions end with the old password (the API refuses them at once)."""
    revocation.recheck_user(user.pk, "password")


def _tenant_suspended(sender: Any, tenant: Any, **kwargs: Any) -> None:
    revocation.close_tenant(tenant.pk, "Organisation suspended.")


CLOSES: tuple[tuple[Signal, Callable[..., None], str], ...] = (
    (user_logged_out, _logged_out, "logged_out"),
    (accounts.account_suspended, _account_suspended, "suspended"),
    (accounts.user_deleted, _user_deleted, "deleted"),
    (accounts.user_updated, _user_updated, "role_changed"),
    (tenants.tenant_suspended, _tenant_suspended, "tenant"),
    (accounts.password_changed, _password_changed, "password"),
)


def connect() -> None:
    """Connect every row (idempotent: dispatch_uid)."""
    for route in EVENTS:
        route.signal.connect(route, weak=False, dispatch_uid=route.uid)
    for signal, handler, name in CLOSES:
        signal.connect(handler, dispatch_uid=f"notifications.revocation.{name}")


connect()
