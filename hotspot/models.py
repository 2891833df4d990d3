"""Sellable packages and the hotspot users (router login credentials) provisioned from them."""

from __future__ import annotations

from datetime import timedelta

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.utils import mask_phone
from config.money import format_money
from tenants.scoping import TenantScopedQuerySet


class Package(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="packages")
    name = models.CharField(max_length=80)
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="KES")
    duration_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    data_limit_mb = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty means unlimited."
    )
    speed_limit = models.CharField(
        max_length=32, blank=True, help_text="Router rate limit, e.g. 5M/2M (rx/tx)."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "price", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="package_unique_name_per_tenant"
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="package_price_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=1), name="package_duration_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({format_money(self.price, self.currency)})"

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


class HotspotUser(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        EXPIRED = "expired", _("Expired")
        DISABLED = "disabled", _("Disabled")

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="hotspot_users"
    )
    username = models.CharField(max_length=64)
    # The customer types this on the router's captive portal, so it is kept retrievable.
    password = models.CharField(max_length=64)
    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="hotspot_users")
    phone = models.CharField(max_length=20, blank=True)
    payment = models.OneToOneField(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="hotspot_user",
    )
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    data_used_mb = models.PositiveIntegerField(default=0)
    # Exact octets the routers reported (data_used_mb is this in whole MB, kept in step).
    data_used_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "username"], name="hotspot_user_unique_username_per_tenant"
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("starts_at")),
                name="hotspot_user_expires_after_start",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return self.username

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def data_limit_bytes(self) -> int | None:
        limit = self.package.data_limit_mb
        return None if limit is None else limit * MB


#: one "MB" of a package's data limit, as routers count it (MikroTik: 1 MiB)
MB = 1024 * 1024


class Router(models.Model):
    """A tenant's router (RADIUS client, "NAS"), known to FreeRADIUS by its source address."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="routers")
    name = models.CharField(max_length=80)
    address = models.GenericIPAddressField(
        unique=True, help_text="The IP address the router's RADIUS requests come from."
    )
    secret = models.CharField(max_length=128, help_text="RADIUS shared secret.")
    coa_port = models.PositiveIntegerField(
        default=3799,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Where the router listens for Disconnect-Requests (RFC 5176).",
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    # set when the "not heard from" event went out; cleared when the router speaks again
    silent_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="router_unique_name_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"


class HotspotSession(models.Model):
    """One RADIUS accounting session (Acct-Session-Id) of a router."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")
        STALE = "stale", _("Closed (stale)")

    class Disconnect(models.TextChoices):
        NONE = "", "—"
        SENT = "sent", _("Disconnect sent")
        ACKED = "acked", _("Disconnected")
        NAKED = "naked", _("Router refused (NAK)")
        NO_ANSWER = "no_answer", _("Router did not answer")

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="hotspot_sessions"
    )
    router = models.ForeignKey(
        Router, null=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    hotspot_user = models.ForeignKey(
        HotspotUser, null=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    username = models.CharField(max_length=64)
    acct_session_id = models.CharField(max_length=64)
    mac = models.CharField(max_length=32, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField()
    last_heard = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    input_octets = models.BigIntegerField(default=0)
    output_octets = models.BigIntegerField(default=0)
    session_time = models.PositiveIntegerField(default=0)
    interim_interval = models.PositiveIntegerField(default=300)
    terminate_cause = models.CharField(max_length=40, blank=True)
    disconnect = models.CharField(
        max_length=12, choices=Disconnect.choices, default=Disconnect.NONE, blank=True
    )
    disconnect_reason = models.CharField(max_length=40, blank=True)
    # when the Disconnect-Request was (last) asked for: a "sent" one this old is sent again
    disconnect_sent_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["status", "-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["router", "acct_session_id"], name="hotspot_session_unique_per_router"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status"]),
            models.Index(fields=["status", "last_heard"]),
            models.Index(fields=["hotspot_user", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.username} on {self.router or '?'} ({self.acct_session_id})"

    @property
    def total_octets(self) -> int:
        return self.input_octets + self.output_octets
