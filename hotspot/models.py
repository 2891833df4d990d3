"""Sellable packages and the hotspot users (router login credentials) provisioned from them."""

from __future__ import annotations

from datetime import timedelta

from django.core.validators import MinValueValidator
from django.db import models

from accounts.utils import mask_phone
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
        return f"{self.name} ({self.currency} {self.price})"

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


class HotspotUser(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        DISABLED = "disabled", "Disabled"

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
