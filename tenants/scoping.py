"""Tenant scoping in one place: every tenant-owned queryset answers `.for_user(user)`.

Views, the API, the admin and selectors read through it, so a tenant user can never reach
another tenant's rows by forgetting a filter.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class TenantScopedQuerySet(models.QuerySet):
    #: The lookup that leads from this model to its tenant's id.
    tenant_lookup = "tenant_id"

    def for_tenant(self, tenant_id: int | None) -> TenantScopedQuerySet:
        if tenant_id is None:
            return self.none()
        return self.filter(**{self.tenant_lookup: tenant_id})

    def for_user(self, user: Any) -> TenantScopedQuerySet:
        """Rows `user` may see: all for system admins, their tenant's for tenant users."""
        if user is None or not getattr(user, "is_authenticated", False):
            return self.none()
        if getattr(user, "is_system_admin", False):
            return self
        return self.for_tenant(getattr(user, "tenant_id", None))


class TenantQuerySet(TenantScopedQuerySet):
    tenant_lookup = "pk"
