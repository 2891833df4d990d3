"""Accounts in the Django admin: who gets in, and user add/edit/password/delete/suspend/activate."""

import pytest
from django.test import Client

from accounts.models import User
from tests.admin_helpers import csrf_token, messages_of, run_action
from tests.factories import DEFAULT_PASSWORD, SystemAdminFactory, TenantStaffFactory

CHANGELIST = "/admin/accounts/user/"
NEW_PASSWORD = "Brand-New-Pass-77"


def sign_in(username, password=DEFAULT_PASSWORD):
    client = Client(enforce_csrf_checks=True)
    token = csrf_token(client, "/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        {"csrfmiddlewaretoken": token, "username": username, "password": password},
    )
    return client, response


# --- who may use the admin ----------------------------------------------------------------


def test_system_admin_signs_in(system_admin):
    client, response = sign_in("root-admin")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("who", ["tenant_admin", "staff"])
def test_tenant_users_cannot_sign_in_or_reach_the_admin(request, who):
    user = request.getfixturevalue(who)
    client, response = sign_in(user.username)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    client.force_login(user)  # even with a session from elsewhere (the pages' login)
    page = client.get("/admin/")
    assert page.status_code == 302 and page["Location"].startswith("/admin/login/")
    assert client.get(CHANGELIST).status_code == 302


def test_a_tenant_user_with_is_staff_still_cannot_reach_the_admin(staff):
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    client, response = sign_in("acme-staff")
    assert "for the platform&#x27;s system admins only" in response.text
    client.force_login(User.objects.get(pk=staff.pk))
    assert client.get("/admin/").status_code == 302


def test_suspended_system_admin_is_refused_with_the_reason(system_admin):
    User.objects.filter(pk=system_admin.pk).update(status="suspended", suspension_reason="x")
    client, response = sign_in("root-admin")
    assert response.status_code == 200
    assert "Your account has been suspended. Contact your administrator." in response.text
    assert "_auth_user_id" not in client.session


def test_locked_out_system_admin_is_refused_even_with_the_right_password(system_admin):
    for _ in range(5):
        sign_in("root-admin", "wrong")
    client, response = sign_in("root-admin")
    assert "Too many failed sign-in attempts" in response.text
    assert "_auth_user_id" not in client.session


def test_wrong_password_gets_the_usual_message(system_admin):
    _, response = sign_in("root-admin", "nope")
    assert "Please enter the correct username and password" in response.text


# --- user actions -------------------------------------------------------------------------


def test_suspend_asks_for_a_reason_then_suspends(sysadmin_client, system_admin, staff, signal_log):
    page = run_action(sysadmin_client, CHANGELIST, "suspend_users", [staff])
    assert (
        page.status_code == 200
        and 'name="reason"' in page.text
        and "acme-staff" not in [m for _, m in messages_of(page)]
    )
    assert User.objects.get(pk=staff.pk).status == "active"
    response = run_action(
        sysadmin_client, CHANGELIST, "suspend_users", [staff], apply="1", reason="Left"
    )
    user = User.objects.get(pk=staff.pk)
    assert user.status == "suspended" and user.suspension_reason == "Left"
    assert ("success", f"Suspended 1: {staff}.") in messages_of(response)
    assert signal_log == [
        (
            "account_suspended",
            {"user": user, "reason": "Left", "until": None, "lockout": False, "by": system_admin},
        )
    ]


def test_suspend_refusals_one_message_each(sysadmin_client, system_admin, staff, signal_log):
    TenantStaffFactory(tenant=staff.tenant, username="gone", status="suspended",
                       suspension_reason="x")  # fmt: skip
    gone = User.objects.get(username="gone")
    response = run_action(
        sysadmin_client,
        CHANGELIST,
        "suspend_users",
        [system_admin, gone, staff],
        apply="1",
        reason="Audit",
    )
    messages = messages_of(response)
    assert ("error", "You cannot suspend your own account.") in messages
    assert ("error", "gone is already suspended.") in messages
    assert ("success", f"Suspended 1: {staff}.") in messages
    assert [name for name, _ in signal_log] == ["account_suspended"]


def test_activate(sysadmin_client, tenant_admin, staff, signal_log):
    User.objects.filter(pk=staff.pk).update(status="suspended", suspension_reason="x")
    response = run_action(sysadmin_client, CHANGELIST, "activate_users", [staff, tenant_admin])
    messages = messages_of(response)
    assert ("success", f"Activated 1: {staff}.") in messages
    assert ("error", "acme-admin is not suspended.") in messages
    assert User.objects.get(pk=staff.pk).status == "active"
    assert [name for name, _ in signal_log] == ["account_activated"]


def test_changelist_filters_and_masks_phones(sysadmin_client, staff, other_admin):
    User.objects.filter(pk=staff.pk).update(phone="254712345678")
    page = sysadmin_client.get(CHANGELIST, {"tenant__id__exact": staff.tenant_id})
    assert "acme-staff" in page.text and "beta-admin" not in page.text
    assert "2547****678" in page.text and "254712345678" not in page.text
    page = sysadmin_client.get(CHANGELIST, {"q": "beta"})
    assert "beta-admin" in page.text and "acme-staff" not in page.text


# --- add / edit / password / delete -------------------------------------------------------


def test_add_user_goes_through_the_service(sysadmin_client, system_admin, tenant, signal_log):
    url = CHANGELIST + "add/"
    response = sysadmin_client.post(
        url,
        {
            "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
            "username": "acme-cashier",
            "role": "staff",
            "tenant": tenant.pk,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "email": "cashier@acme.example",
            "phone": "0712 345 678",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="acme-cashier")
    assert user.check_password(NEW_PASSWORD) and user.tenant == tenant and not user.is_staff
    assert signal_log == [("user_created", {"user": user, "by": system_admin})]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password1": "password", "password2": "password"}, "This password is too common."),
        ({"password2": "Other-Pass-77"}, "The two password fields didn’t match."),
        ({"tenant": ""}, "Tenant admins and staff need a tenant."),
        ({"role": "system_admin"}, "System admins do not belong to a tenant."),
        ({"phone": "phone"}, "9 to 15 digits"),
        ({"username": "ACME-STAFF"}, "That username is already taken."),
    ],
)
def test_add_user_refusals_show_on_the_form(
    sysadmin_client, tenant, staff, signal_log, change, message
):
    url = CHANGELIST + "add/"
    data = {
        "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
        "username": "acme-cashier",
        "role": "staff",
        "tenant": tenant.pk,
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        **change,
    }
    response = sysadmin_client.post(url, data)
    assert response.status_code == 200
    assert message in response.text
    assert not User.objects.filter(username__in=["acme-cashier", "ACME-STAFF"]).exists()
    assert signal_log == []


def test_edit_user_goes_through_the_service(sysadmin_client, system_admin, staff, signal_log):
    url = f"{CHANGELIST}{staff.pk}/change/"
    data = {
        "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
        "role": "tenant_admin",
        "first_name": "Wanjiru",
        "last_name": staff.last_name,
        "email": staff.email,
        "phone": "",
    }
    response = sysadmin_client.post(url, data)
    assert response.status_code == 302
    user = User.objects.get(pk=staff.pk)
    assert user.role == "tenant_admin" and user.first_name == "Wanjiru"
    assert signal_log == [
        ("user_updated", {"user": user, "changed": ["first_name", "role"], "by": system_admin})
    ]


def test_edit_refusal_shows_on_the_form(sysadmin_client, staff, signal_log):
    url = f"{CHANGELIST}{staff.pk}/change/"
    data = {
        "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
        "role": "system_admin",
        "first_name": "X",
        "last_name": "",
        "email": "",
        "phone": "",
    }
    response = sysadmin_client.post(url, data)
    assert response.status_code == 200 and "errornote" in response.text
    assert User.objects.get(pk=staff.pk).role == "staff" and signal_log == []


def test_change_password_goes_through_the_service(sysadmin_client, system_admin, staff, signal_log):
    url = f"{CHANGELIST}{staff.pk}/password/"
    token = csrf_token(sysadmin_client, url)
    response = sysadmin_client.post(
        url, {"csrfmiddlewaretoken": token, "password1": "short", "password2": "short"}
    )
    assert response.status_code == 200 and "too short" in response.text
    response = sysadmin_client.post(
        url, {"csrfmiddlewaretoken": token, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert User.objects.get(pk=staff.pk).check_password(NEW_PASSWORD)
    assert signal_log == [
        ("password_changed", {"user": User.objects.get(pk=staff.pk), "by": system_admin})
    ]


def test_delete_goes_through_the_service(sysadmin_client, system_admin, staff, signal_log):
    url = f"{CHANGELIST}{staff.pk}/delete/"
    response = sysadmin_client.post(
        url, {"csrfmiddlewaretoken": csrf_token(sysadmin_client, url), "post": "yes"}
    )
    assert response.status_code == 302
    assert not User.objects.filter(pk=staff.pk).exists()
    assert [(n, kw["username"], kw["by"]) for n, kw in signal_log] == [
        ("user_deleted", "acme-staff", system_admin)
    ]


def test_admins_cannot_delete_themselves(sysadmin_client, system_admin):
    assert sysadmin_client.get(f"{CHANGELIST}{system_admin.pk}/delete/").status_code == 403
    assert "delete_selected" not in sysadmin_client.get(CHANGELIST).text


def test_system_admin_role_is_read_only(sysadmin_client):
    other = SystemAdminFactory(username="ops2")
    page = sysadmin_client.get(f"{CHANGELIST}{other.pk}/change/")
    assert page.status_code == 200 and 'name="role"' not in page.text


def test_add_a_system_admin(sysadmin_client):
    url = CHANGELIST + "add/"
    response = sysadmin_client.post(
        url,
        {
            "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
            "username": "ops2",
            "role": "system_admin",
            "tenant": "",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    ops2 = User.objects.get(username="ops2")
    assert ops2.is_system_admin and ops2.is_staff and ops2.tenant is None
    client, _ = sign_in("ops2", NEW_PASSWORD)
    assert client.get("/admin/").status_code == 200
