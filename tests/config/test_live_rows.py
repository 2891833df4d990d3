"""`?row=<id>` of the live lists (data-live-rows): the row's HTML through the page's own view,
filter and permissions, 204 when the page would not show it, 400 for a bad id."""

from __future__ import annotations

import re

import pytest

from payments.models import Payment
from tests.factories import (
    HotspotSessionFactory,
    HotspotUserFactory,
    PaymentFactory,
    TenantFactory,
    TenantStaffFactory,
)

pytestmark = pytest.mark.django_db


def _row(client, path, pk, **params):
    return client.get(path, {"row": pk, **params})


def _one_row(response) -> str:
    html = response.content.decode().strip()
    assert html.startswith("<tr") and html.endswith("</tr>"), html[:200]
    assert html.count("<tr") == 1
    return html


def test_payment_row_follows_the_status_and_the_filter(client, staff, tenant):
    payment = PaymentFactory(package__tenant=tenant, provider_reference="REF-LIVE")
    client.force_login(staff)
    html = _one_row(_row(client, "/payments/", payment.pk))
    assert f'data-row-id="{payment.pk}"' in html and "Pending" in html
    assert "<html" not in html  # a row, not the page
    # Outside the page's filter: 204, the browser takes the row away.
    assert _row(client, "/payments/", payment.pk, status="completed").status_code == 204
    assert _row(client, "/payments/", payment.pk, q="nothing-like-it").status_code == 204
    Payment.objects.filter(pk=payment.pk).update(status="completed")
    html = _one_row(_row(client, "/payments/", payment.pk, status="completed"))
    assert "text-bg-success" in html and "Completed" in html
    assert _row(client, "/payments/", payment.pk, status="pending").status_code == 204


def test_another_tenants_row_is_never_answered(client, staff, other_tenant):
    theirs = PaymentFactory(package__tenant=other_tenant, provider_reference="REF-THEIRS")
    client.force_login(staff)
    response = _row(client, "/payments/", theirs.pk)
    assert response.status_code == 204 and b"REF-THEIRS" not in response.content
    hotspot_user = HotspotUserFactory(package__tenant=other_tenant)
    assert _row(client, "/hotspot-users/", hotspot_user.pk).status_code == 204
    session = HotspotSessionFactory(router__tenant=other_tenant)
    assert _row(client, "/hotspot-sessions/", session.pk).status_code == 204
    other_staff = TenantStaffFactory(tenant=other_tenant)
    assert _row(client, "/users/", other_staff.pk).status_code in (204, 403)


def test_bad_row_ids_are_refused(client, staff):
    client.force_login(staff)
    for bad in ("abc", "-1", "1.5", "9" * 40, "<script>"):
        response = _row(client, "/payments/", bad)
        assert response.status_code == 400, bad
        assert b"<script>" not in response.content


def test_rows_need_the_pages_own_sign_in(client, tenant):
    payment = PaymentFactory(package__tenant=tenant)
    response = _row(client, "/payments/", payment.pk)
    assert response.status_code in (302, 403) and b"data-row-id" not in response.content


def test_row_html_escapes_what_users_typed(client, tenant_admin, tenant):
    hostile = "<img src=x onerror=alert(1)>"
    hotspot_user = HotspotUserFactory(package__tenant=tenant, package__name=hostile)
    client.force_login(tenant_admin)
    html = _one_row(_row(client, "/hotspot-users/", hotspot_user.pk))
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Disable" in html  # the admin's action comes with the row


def test_user_and_session_rows(client, tenant_admin, staff, tenant):
    client.force_login(tenant_admin)
    html = _one_row(_row(client, "/users/", staff.pk))
    assert f'data-user="{staff.username}"' in html and "Suspend" in html
    session = HotspotSessionFactory(router__tenant=tenant)
    html = _one_row(_row(client, "/hotspot-sessions/", session.pk))
    assert f'id="hotspot-session-{session.pk}"' in html


def test_tenant_row_for_system_admins_only(client, system_admin, tenant_admin):
    pending = TenantFactory(status="pending", name="Pending & Co")
    client.force_login(system_admin)
    html = _one_row(_row(client, "/system/tenants/", pending.pk, status="pending"))
    assert "Approve" in html and "Pending &amp; Co" in html
    back = re.search(r'name="back" value="([^"]*)"', html).group(1)
    assert "row=" not in back and "status=pending" in back
    assert _row(client, "/system/tenants/", pending.pk, status="active").status_code == 204
    client.force_login(tenant_admin)
    assert _row(client, "/system/tenants/", pending.pk).status_code in (302, 403)


def test_list_pages_mark_their_live_rows(client, tenant_admin, tenant):
    payment = PaymentFactory(package__tenant=tenant)
    client.force_login(tenant_admin)
    html = client.get("/payments/").content.decode()
    assert 'data-live-rows="payment_id"' in html and 'data-live-new="1"' in html
    assert f'data-row-id="{payment.pk}"' in html
    # Past the first page, new rows do not appear (they belong on page 1).
    PaymentFactory.create_batch(30, package__tenant=tenant)
    html = client.get("/payments/", {"page": 2}).content.decode()
    assert 'data-live-rows="payment_id"' in html and "data-live-new" not in html


def test_row_answers_carry_the_filtered_lists_count(client, staff, tenant):
    """X-List-Total: what the count under the list says now (notifications.js writes it)."""
    first, second = PaymentFactory.create_batch(2, package__tenant=tenant)
    PaymentFactory(package__tenant=TenantFactory())  # another tenant's: never counted
    Payment.objects.filter(pk=second.pk).update(status=Payment.Status.COMPLETED)
    client.force_login(staff)
    assert _row(client, "/payments/", first.pk)["X-List-Total"] == "2"
    gone = _row(client, "/payments/", first.pk, status="completed")
    assert gone.status_code == 204 and gone["X-List-Total"] == "1"


@pytest.mark.parametrize(
    "path",
    ["/payments/", "/hotspot-users/", "/users/", "/vouchers/", "/hotspot-sessions/"],
)
def test_every_live_list_has_a_count_the_rows_keep(client, tenant_admin, path):
    client.force_login(tenant_admin)
    html = client.get(path).content.decode()
    assert "data-live-rows=" in html and "data-page-count" in html
    assert "{#" not in html and "X-List-Total" not in html  # template comments stay comments
    assert re.search(r'data-live-limit="25"', html)  # page 1 keeps its 25 rows
    assert client.get(path, {"row": "999999"})["X-List-Total"].isdigit()


def test_the_system_tenants_list_counts_too(client, system_admin, tenant):
    client.force_login(system_admin)
    html = client.get("/system/tenants/").content.decode()
    assert "data-page-count" in html and 'data-noun="tenants"' in html
    assert client.get("/system/tenants/", {"row": tenant.pk})["X-List-Total"] == "1"
