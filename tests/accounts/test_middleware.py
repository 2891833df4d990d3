"""A signed-in user who becomes blocked is signed out on their next request, and told why."""

import pytest

from accounts.services import user_suspend
from tenants.models import Tenant
from tenants.services import tenant_suspend
from tests.factories import SystemAdminFactory


def signed_in(client):
    return "_auth_user_id" in client.session


def test_suspended_system_admin_is_signed_out_next_request(client, system_admin):
    client.force_login(system_admin)
    assert client.get("/admin/").status_code == 200
    user_suspend(user=system_admin, reason="Audit", by=SystemAdminFactory(username="ops2"))
    response = client.get("/admin/", follow=True)
    assert not signed_in(client)
    assert response.redirect_chain[-1][0].startswith("/admin/login/")
    assert "You have been signed out. Your account has been suspended." in response.text


@pytest.mark.parametrize("who", ["tenant_admin", "staff"])
def test_users_of_a_suspended_tenant_are_signed_out(client, request, tenant, who):
    client.force_login(request.getfixturevalue(who))
    client.get("/admin/login/")
    assert signed_in(client)
    tenant_suspend(tenant=tenant, reason="Unpaid", by=None)
    response = client.get("/admin/login/")
    assert not signed_in(client)
    assert "organisation&#x27;s account is suspended" in response.text


def test_active_users_stay_signed_in(client, tenant_admin, other_tenant):
    client.force_login(tenant_admin)
    tenant_suspend(tenant=other_tenant, reason="Unpaid", by=None)  # someone else's tenant
    client.get("/admin/login/")
    client.get("/admin/login/")
    assert signed_in(client)


def test_a_sign_in_lockout_leaves_open_sessions_alone(client, staff):
    """Guessing locks the guesser's address; the person's own session goes on."""
    from django.contrib.auth import authenticate

    client.force_login(staff)
    for _ in range(6):
        authenticate(None, username="acme-staff", password="wrong")
    client.get("/admin/login/")
    assert signed_in(client)
    assert Tenant.objects.get(pk=staff.tenant_id).status == "active"


def test_api_requests_are_left_to_the_api(client, tenant_admin, tenant):
    """The API explains a blocked session in JSON itself; the page session ends on the next page."""
    client.force_login(tenant_admin)
    tenant_suspend(tenant=tenant, reason="Unpaid", by=None)
    client.get("/api/not-a-real-endpoint/")
    assert signed_in(client)
    client.get("/admin/login/")
    assert not signed_in(client)
