"""Tenant reads: scoped lists with search/status filters, scoped get-by-id."""

import pytest

from config.errors import NotFound
from tenants import selectors
from tenants.models import Tenant
from tests.factories import TenantFactory


@pytest.fixture
def gamma(db):
    return TenantFactory(name="Gamma Spots", slug="gamma", status="pending", approved_at=None)


def test_system_admin_lists_searches_and_filters(system_admin, tenant, other_tenant, gamma):
    assert list(selectors.tenant_list(user=system_admin)) == [tenant, other_tenant, gamma]
    assert list(selectors.tenant_list(user=system_admin, search="net")) == [other_tenant]
    assert list(selectors.tenant_list(user=system_admin, search="ops@gamma")) == [gamma]
    assert list(selectors.tenant_list(user=system_admin, status="pending")) == [gamma]
    assert selectors.status_counts(user=system_admin) == {
        "pending": 1,
        "active": 2,
        "suspended": 0,
    }


def test_tenant_users_list_only_their_tenant(tenant_admin, tenant, other_tenant):
    assert list(selectors.tenant_list(user=tenant_admin, search="")) == [tenant]
    assert list(selectors.tenant_list(user=tenant_admin, search="Beta")) == []
    assert selectors.status_counts(user=tenant_admin)["active"] == 1


def test_get_is_scoped(tenant_admin, system_admin, tenant, other_tenant):
    assert selectors.tenant_get(user=tenant_admin, tenant_id=tenant.pk) == tenant
    assert selectors.tenant_get(user=system_admin, tenant_id=str(other_tenant.pk)) == other_tenant
    for bad in (other_tenant.pk, 999999, "abc", None):
        with pytest.raises(NotFound):
            selectors.tenant_get(user=tenant_admin, tenant_id=bad)
    assert Tenant.objects.count() == 2
