"""Platform users: system admins (no tenant) and tenant admins / staff (exactly one tenant)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.scoping import TenantScopedQuerySet


class PlatformUserManager(UserManager.from_queryset(TenantScopedQuerySet)):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # `createsuperuser` makes a system admin: platform staff with no tenant.
        extra_fields.setdefault("role", User.Role.SYSTEM_ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    class Role(models.TextChoices):
        SYSTEM_ADMIN = "system_admin", _("System admin")
        TENANT_ADMIN = "tenant_admin", _("Tenant admin")
        STAFF = "staff", _("Staff")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    phone = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # None while suspended means "until an admin reactivates"; a time means a lockout that ends.
    suspended_until = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=500, blank=True)
    failed_login_count = models.PositiveSmallIntegerField(default=0)
    #: the language of this person's pages, toasts and emails, one of settings.LANGUAGES
    #: (no model choices: adding a language needs no migration); "" follows the browser
    #: (Accept-Language, or the set_language cookie)
    language = models.CharField(_("language"), max_length=10, blank=True, default="")

    objects = PlatformUserManager()

    class Meta:
        ordering = ["username"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(role="system_admin") & models.Q(tenant__isnull=True))
                | (models.Q(role__in=["tenant_admin", "staff"]) & models.Q(tenant__isnull=False)),
                name="user_role_matches_tenant",
            )
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_system_admin(self) -> bool:
        return self.role == self.Role.SYSTEM_ADMIN

    @property
    def is_tenant_admin(self) -> bool:
        return self.role == self.Role.TENANT_ADMIN

    @property
    def is_suspended(self) -> bool:
        """Suspended now: an admin suspension, or a lockout that has not yet run out."""
        if self.status != self.Status.SUSPENDED:
            return False
        return self.suspended_until is None or self.suspended_until > timezone.now()
