"""Tenants in the Django admin: list, add/edit and the approve/suspend/reactivate actions."""

import pytest

from tenants.models import Tenant
from tests.admin_helpers import csrf_token, messages_of, run_action, submit_page_form
from tests.factories import TenantFactory

CHANGELIST = "/admin/tenants/tenant/"


def act(client, action, tenants, **extra):
    return run_action(client, CHANGELIST, action, tenants, **extra)


def csrf(client, url=CHANGELIST):
    return csrf_token(client, url)


@pytest.fixture
def pending(db):
    return TenantFactory(name="Gamma Spots", slug="gamma", status="pending", approved_at=None)


def test_changelist_lists_searches_and_filters(sysadmin_client, tenant, other_tenant, pending):
    page = sysadmin_client.get(CHANGELIST)
    assert "Acme WiFi" in page.text and "Beta Net" in page.text and "Gamma Spots" in page.text
    page = sysadmin_client.get(CHANGELIST, {"q": "gamma"})
    assert "Gamma Spots" in page.text and "Acme WiFi" not in page.text
    page = sysadmin_client.get(CHANGELIST, {"status__exact": "active"})
    assert "Acme WiFi" in page.text and "Gamma Spots" not in page.text


def test_approve_action(sysadmin_client, system_admin, pending, signal_log):
    response = act(sysadmin_client, "approve_tenants", [pending])
    pending.refresh_from_db()
    assert pending.status == "active" and pending.approved_by == system_admin
    assert ("success", "Approved 1: Gamma Spots.") in messages_of(response)
    assert [name for name, _ in signal_log] == ["tenant_approved"]


def test_refused_transitions_get_one_error_each_and_the_rest_succeed(
    sysadmin_client, tenant, other_tenant, pending, signal_log
):
    response = act(sysadmin_client, "approve_tenants", [tenant, other_tenant, pending])
    messages = messages_of(response)
    errors = [text for level, text in messages if level == "error"]
    assert len(errors) == 2
    assert any("Acme WiFi is active; only a pending tenant can be approved" in e for e in errors)
    assert any("Beta Net is active" in e for e in errors)
    assert ("success", "Approved 1: Gamma Spots.") in messages
    assert [name for name, _ in signal_log] == ["tenant_approved"]


def test_suspend_asks_for_a_reason_first(sysadmin_client, tenant, signal_log):
    response = act(sysadmin_client, "suspend_tenants", [tenant])
    assert response.status_code == 200
    assert 'name="reason"' in response.text and "Acme WiFi" in response.text
    assert 'name="csrfmiddlewaretoken"' in response.text
    tenant.refresh_from_db()
    assert tenant.status == "active" and signal_log == []


def test_suspend_with_reason(sysadmin_client, system_admin, tenant, signal_log):
    response = act(
        sysadmin_client,
        "suspend_tenants",
        [tenant],
        apply="Suspend tenants",
        reason="Unpaid invoice",
    )
    tenant.refresh_from_db()
    assert tenant.status == "suspended" and tenant.suspension_reason == "Unpaid invoice"
    assert tenant.suspended_by == system_admin
    assert ("success", "Suspended 1: Acme WiFi.") in messages_of(response)
    assert response.redirect_chain[-1][0].startswith(CHANGELIST)
    assert [name for name, _ in signal_log] == ["tenant_suspended"]


def test_suspend_without_reason_shows_the_page_again(sysadmin_client, tenant, signal_log):
    response = act(
        sysadmin_client, "suspend_tenants", [tenant], apply="Suspend tenants", reason="  "
    )
    assert response.status_code == 200 and "Give a reason." in response.text
    tenant.refresh_from_db()
    assert tenant.status == "active" and signal_log == []


def test_suspend_reason_page_needs_csrf(sysadmin_client, tenant):
    response = sysadmin_client.post(
        CHANGELIST,
        {"action": "suspend_tenants", "_selected_action": [tenant.pk], "apply": "1", "reason": "x"},
    )
    assert response.status_code == 403
    tenant.refresh_from_db()
    assert tenant.status == "active"


def test_suspending_a_pending_tenant_is_refused(sysadmin_client, pending):
    response = act(sysadmin_client, "suspend_tenants", [pending], apply="Suspend", reason="spam")
    assert (
        "error",
        "Gamma Spots is pending approval; only an active tenant can be suspended.",
    ) in (messages_of(response))
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_reactivate(sysadmin_client, tenant, signal_log):
    Tenant.objects.filter(pk=tenant.pk).update(status="suspended", suspension_reason="x")
    response = act(sysadmin_client, "reactivate_tenants", [tenant])
    tenant.refresh_from_db()
    assert tenant.status == "active" and tenant.suspension_reason == ""
    assert ("success", "Reactivated 1: Acme WiFi.") in messages_of(response)
    response = act(sysadmin_client, "reactivate_tenants", [tenant])
    assert (
        "error",
        "Acme WiFi is active; only a suspended tenant can be reactivated.",
    ) in messages_of(response)
    assert [name for name, _ in signal_log] == ["tenant_reactivated"]


def test_add_goes_through_the_service(sysadmin_client, system_admin, signal_log):
    token = csrf(sysadmin_client, CHANGELIST + "add/")
    response = sysadmin_client.post(
        CHANGELIST + "add/",
        {
            "csrfmiddlewaretoken": token,
            "name": "Delta Hotspots",
            "slug": "",
            "contact_email": "ops@delta.example",
            "contact_phone": "+254 700 000 999",
            "status": "active",
        },
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="delta-hotspots")
    assert tenant.status == "active" and tenant.contact_phone == "254700000999"
    assert tenant.approved_by == system_admin
    assert signal_log == [("tenant_created", {"tenant": tenant, "by": system_admin})]


def test_add_shows_service_refusals_as_form_errors(sysadmin_client, tenant, signal_log):
    token = csrf(sysadmin_client, CHANGELIST + "add/")
    response = sysadmin_client.post(
        CHANGELIST + "add/",
        {
            "csrfmiddlewaretoken": token,
            "name": "Acme",
            "slug": "",
            "contact_email": "ops@x.example",
            "contact_phone": "not a phone",
            "status": "active",
        },
    )
    assert response.status_code == 200
    assert "That short name is already taken." in response.text
    assert Tenant.objects.count() == 1 and signal_log == []


def test_edit_goes_through_the_service(sysadmin_client, system_admin, tenant, signal_log):
    url = f"{CHANGELIST}{tenant.pk}/change/"
    token = csrf(sysadmin_client, url)
    response = sysadmin_client.post(
        url,
        {
            "csrfmiddlewaretoken": token,
            "name": "Acme Wireless",
            "contact_email": tenant.contact_email,
            "contact_phone": tenant.contact_phone,
            "time_zone": tenant.time_zone,
            "currency": tenant.currency,
        },
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.name == "Acme Wireless"
    assert signal_log == [
        ("tenant_updated", {"tenant": tenant, "changed": ["name"], "by": system_admin})
    ]
    response = sysadmin_client.post(
        url,
        {
            "csrfmiddlewaretoken": token,
            "name": "Acme Wireless",
            "contact_email": tenant.contact_email,
            "contact_phone": "12",
            "time_zone": tenant.time_zone,
            "currency": tenant.currency,
        },
    )
    assert response.status_code == 200 and "9 to 15 digits" in response.text
    assert len(signal_log) == 1


def test_tenants_cannot_be_deleted(sysadmin_client, tenant):
    assert sysadmin_client.get(f"{CHANGELIST}{tenant.pk}/delete/").status_code == 403
    assert "delete_selected" not in sysadmin_client.get(CHANGELIST).text


def test_the_reason_page_submits_to_the_suspension(sysadmin_client, tenant, other_tenant):
    page = act(sysadmin_client, "suspend_tenants", [tenant, other_tenant])
    response = submit_page_form(
        sysadmin_client, page, CHANGELIST, reason="Fraud review", apply="Suspend tenants"
    )
    assert ("success", "Suspended 2: Acme WiFi, Beta Net.") in messages_of(response)
    assert set(Tenant.objects.values_list("status", "suspension_reason")) == {
        ("suspended", "Fraud review")
    }


def test_add_and_change_pages_show_these_fields(sysadmin_client, tenant):
    """Pinned: the lists are shared with the API (tenants.services.DETAIL_FIELDS)."""
    add = sysadmin_client.get("/admin/tenants/tenant/add/").context["adminform"]
    assert list(add.form.fields) == [
        *("name", "slug", "contact_email", "contact_phone", "time_zone", "currency", "status")
    ]
    change = sysadmin_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").context["adminform"]
    assert list(change.form.fields) == [
        *("name", "contact_email", "contact_phone", "time_zone", "currency")
    ]
    assert change.readonly_fields == (
        *("slug", "status", "suspension_reason", "approved_at", "approved_by"),
        *("suspended_at", "suspended_by", "created_at", "updated_at"),
    )
