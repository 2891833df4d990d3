"""User reads: scoped lists with search/status/role filters, scoped get-by-id."""

import pytest

from accounts import selectors
from config.errors import NotFound
from tests.factories import TenantStaffFactory


def test_tenant_admin_lists_own_tenants_users(tenant_admin, staff, other_admin, system_admin):
    assert list(selectors.user_list(user=tenant_admin)) == [tenant_admin, staff]
    assert list(selectors.user_list(user=tenant_admin, role="staff")) == [staff]
    assert list(selectors.user_list(user=tenant_admin, search="beta")) == []


def test_search_and_status_filters(system_admin, tenant, tenant_admin, other_admin):
    wanjiru = TenantStaffFactory(tenant=tenant, username="w.k", first_name="Wanjiru")
    suspended = TenantStaffFactory(tenant=tenant, status="suspended", suspension_reason="x")
    assert list(selectors.user_list(user=system_admin, search="wanj")) == [wanjiru]
    assert list(selectors.user_list(user=system_admin, search="beta-")) == [other_admin]
    assert list(selectors.user_list(user=system_admin, status="suspended")) == [suspended]
    assert set(selectors.user_list(user=system_admin, tenant_id=other_admin.tenant_id)) == {
        other_admin
    }


def test_get_is_scoped(tenant_admin, staff, other_admin, system_admin):
    assert selectors.user_get(user=tenant_admin, user_id=staff.pk) == staff
    assert selectors.user_get(user=system_admin, user_id=other_admin.pk) == other_admin
    for bad in (other_admin.pk, system_admin.pk, "x", None):
        with pytest.raises(NotFound):
            selectors.user_get(user=tenant_admin, user_id=bad)
