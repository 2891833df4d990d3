"""The user edit page names the record it edits, so the socket can tell who else has it open."""

from __future__ import annotations

import pytest

from tests.factories import TenantStaffFactory

pytestmark = pytest.mark.django_db


def notice(html: str) -> str | None:
    start = html.find('id="viewers-notice"')
    return None if start < 0 else html[html.rfind("<", 0, start) : html.find(">", start) + 1]


def test_edit_page_has_a_hidden_viewers_notice_with_the_record(client, tenant_admin, staff):
    client.force_login(tenant_admin)
    tag = notice(client.get(f"/users/{staff.pk}/edit/").content.decode())
    assert tag is not None
    assert f'data-view-record="user.{staff.pk}"' in tag
    assert " hidden" in tag  # nobody else yet: the socket's "viewers" frame fills it in


def test_invalid_edit_still_has_the_notice(client, tenant_admin, staff):
    client.force_login(tenant_admin)
    response = client.post(f"/users/{staff.pk}/edit/", {"email": "not-an-email"})
    assert response.status_code == 400
    assert f'data-view-record="user.{staff.pk}"' in response.content.decode()


def test_add_page_has_no_notice(client, tenant_admin):
    client.force_login(tenant_admin)
    assert notice(client.get("/users/new/").content.decode()) is None


def test_staff_and_other_tenants_never_get_the_record(client, staff, other_admin, tenant):
    colleague = TenantStaffFactory(tenant=tenant, username="acme-staff-2")
    client.force_login(staff)
    response = client.get(f"/users/{colleague.pk}/edit/")
    assert response.status_code == 403
    assert "data-view-record" not in response.content.decode()
    client.force_login(other_admin)
    response = client.get(f"/users/{colleague.pk}/edit/")
    assert response.status_code == 404
    assert "data-view-record" not in response.content.decode()


def test_admin_change_form_has_the_notice_and_the_socket_module(sysadmin_client, staff):
    html = sysadmin_client.get(f"/admin/accounts/user/{staff.pk}/change/").content.decode()
    tag = notice(html)
    assert tag is not None and f'data-view-record="user.{staff.pk}"' in tag
    assert 'id="notifications-config"' in html and "js/notifications.js" in html


def test_admin_add_form_has_no_notice(sysadmin_client):
    html = sysadmin_client.get("/admin/accounts/user/add/").content.decode()
    assert notice(html) is None and "js/notifications.js" not in html
