"""Hotspot operators (tenants) and their life cycle: pending → active ⇄ suspended."""

from __future__ import annotations

import secrets
import zoneinfo

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from config.money import CURRENCY_CHOICES, validate_currency, validate_time_zone

from .scoping import TenantQuerySet


def generate_payment_secret() -> str:
    return secrets.token_hex(32)


def default_time_zone() -> str:
    """New tenants start in the platform's zone (TIME_ZONE, Africa/Nairobi unless set)."""
    return settings.TIME_ZONE


def default_currency() -> str:
    """New tenants bill in CURRENCY (KES unless set)."""
    return settings.CURRENCY


class Tenant(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending approval")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    contact_email = models.EmailField()
    contact_phone = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    suspension_reason = models.CharField(max_length=500, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Every page, toast, report and email its people see shows times in this zone and money in
    # this currency (accounts.middleware activates the zone; config.money writes the amounts).
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="Times on its pages, reports (where a day starts), toasts and emails.",
    )
    currency = models.CharField(
        max_length=3,
        default=default_currency,
        choices=CURRENCY_CHOICES,
        validators=[validate_currency],
        help_text="ISO 4217 code of its packages' prices and payments.",
    )
    # Shared with the payment provider to sign callbacks (HMAC-SHA256).
    payment_secret = models.CharField(
        max_length=128, default=generate_payment_secret, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="suspended") | ~models.Q(suspension_reason=""),
                name="tenant_suspended_has_reason",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def payment_secret_masked(self) -> str:
        """The payment secret as /settings/ shows it before "Reveal": its last four only."""
        return "•" * 12 + self.payment_secret[-4:]

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        """The tenant's zone (a stored name no longer known falls back to TIME_ZONE)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo(settings.TIME_ZONE)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
