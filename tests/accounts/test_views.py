"""Account pages: sign-in (with blocked users told why), sign-out, password, profile, users."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD, TenantAdminFactory, TenantStaffFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def login_post(client, username, password=DEFAULT_PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


# ---------------------------------------------------------------- sign-in / sign-out


def test_login_page_renders_with_csrf_and_no_socket(client):
    response = client.get(LOGIN)
    html = response.content.decode()
    assert response.status_code == 200
    assert "csrfmiddlewaretoken" in html
    assert '"live": false' in html  # public page: the JS opens no socket
    assert 'id="toast-stack"' in html and 'aria-live="polite"' in html


def test_login_success_redirects_to_dashboard(client, tenant_admin):
    response = login_post(client, "acme-admin")
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert '"live": true' in page.content.decode()


def test_login_wrong_password_is_a_clear_error(client, tenant_admin):
    response = login_post(client, "acme-admin", "nope")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_suspended_user_is_told_why(client, tenant_admin, system_admin):
    from accounts.services import user_suspend

    user_suspend(user=tenant_admin, reason="Unpaid invoice", by=system_admin)
    response = login_post(client, "acme-admin")
    assert "Your account has been suspended. Contact your administrator." in (
        response.content.decode()
    )
    assert "_auth_user_id" not in client.session


def test_pending_tenant_admin_is_told_to_wait(client, tenant, tenant_admin):
    tenant.status = tenant.Status.PENDING
    tenant.save()
    response = login_post(client, "acme-admin")
    assert "awaiting approval" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_after_repeated_failures_says_so(client, tenant_admin, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        login_post(client, "acme-admin", "wrong")
    response = login_post(client, "acme-admin", "wrong")
    assert "Too many failed sign-in attempts" in response.content.decode()
    # Even the right password is refused during the lockout, with the same reason.
    response = login_post(client, "acme-admin")
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_user_blocked_after_sign_in_is_signed_out_with_reason(client, tenant_admin, system_admin):
    from accounts.services import user_suspend

    client.force_login(tenant_admin)
    user_suspend(user=tenant_admin, reason="Fraud", by=system_admin)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0].startswith(LOGIN)
    assert "has been suspended" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_is_post_only(client, tenant_admin):
    client.force_login(tenant_admin)
    assert client.get("/accounts/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_logout_without_csrf_token_is_refused(tenant_admin):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_admin)
    assert client.post("/accounts/logout/").status_code == 403
    assert "_auth_user_id" in client.session


def test_pages_need_sign_in(client):
    for url in [
        "/",
        "/users/",
        "/packages/",
        "/hotspot-users/",
        "/payments/",
        "/settings/",
        "/accounts/profile/",
        "/accounts/password/",
        "/system/tenants/",
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(LOGIN), url


# ---------------------------------------------------------------- password change


def test_password_change(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": DEFAULT_PASSWORD,
            "new_password": "Brand-New-Pass-77",
            "new_password_confirm": "Brand-New-Pass-77",
        },
        follow=True,
    )
    assert "Your password has been changed." in response.content.decode()
    tenant_admin.refresh_from_db()
    assert tenant_admin.check_password("Brand-New-Pass-77")
    assert "_auth_user_id" in client.session  # still signed in


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {
                "old_password": "wrong",
                "new_password": "Brand-New-Pass-77",
                "new_password_confirm": "Brand-New-Pass-77",
            },
            "old_password",
            "not correct",
        ),
        (
            {
                "old_password": DEFAULT_PASSWORD,
                "new_password": "Brand-New-Pass-77",
                "new_password_confirm": "Other-Pass-77",
            },
            "new_password_confirm",
            "do not match",
        ),
        (
            {
                "old_password": DEFAULT_PASSWORD,
                "new_password": "12345678",
                "new_password_confirm": "12345678",
            },
            "new_password",
            "entirely numeric",
        ),
        (
            {"old_password": DEFAULT_PASSWORD, "new_password": "", "new_password_confirm": ""},
            "new_password",
            "required",
        ),
    ],
)
def test_password_change_bad_input(client, tenant_admin, data, field, message):
    client.force_login(tenant_admin)
    response = client.post("/accounts/password/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    tenant_admin.refresh_from_db()
    assert tenant_admin.check_password(DEFAULT_PASSWORD)


# ---------------------------------------------------------------- profile


def test_profile_update(client, staff):
    client.force_login(staff)
    response = client.post(
        "/accounts/profile/",
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@example.com",
            "phone": "+254 711 000111",
        },
        follow=True,
    )
    assert "Your profile has been saved." in response.content.decode()
    staff.refresh_from_db()
    assert (staff.first_name, staff.email, staff.phone) == (
        "Ann",
        "ann@example.com",
        "254711000111",
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email", "phone": ""}, "email"),
        ({"email": "", "phone": "12ab"}, "phone"),
    ],
)
def test_profile_bad_input_changes_nothing(client, staff, data, field):
    client.force_login(staff)
    before = User.objects.values().get(pk=staff.pk)
    response = client.post("/accounts/profile/", {"first_name": "Changed", **data})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert "is-invalid" in response.content.decode()
    assert User.objects.values().get(pk=staff.pk) == before


# ---------------------------------------------------------------- tenant users


NEW_USER = {
    "username": "new-clerk",
    "first_name": "New",
    "last_name": "Clerk",
    "email": "clerk@example.com",
    "phone": "",
    "role": "staff",
    "password": "Very-Secret-99",
}


def test_admin_lists_and_searches_own_tenant_users(client, tenant_admin, staff, other_admin):
    client.force_login(tenant_admin)
    html = client.get("/users/").content.decode()
    assert "acme-staff" in html and "beta-admin" not in html
    assert 'id="add-user"' in html
    html = client.get("/users/", {"q": "staff"}).content.decode()
    assert "acme-staff" in html and 'data-user="acme-admin"' not in html


def test_admin_creates_user(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post("/users/new/", NEW_USER, follow=True)
    assert "New Clerk has been added." in response.content.decode()
    user = User.objects.get(username="new-clerk")
    assert user.tenant_id == tenant_admin.tenant_id and user.role == "staff"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"username": ""}, "username"),
        ({"username": "acme-staff"}, "username"),
        ({"password": "123"}, "password"),
        ({"email": "bad"}, "email"),
        ({"phone": "xyz"}, "phone"),
        ({"role": "system_admin"}, "role"),
    ],
)
def test_create_user_bad_input_changes_nothing(client, tenant_admin, staff, override, field):
    client.force_login(tenant_admin)
    count = User.objects.count()
    response = client.post("/users/new/", {**NEW_USER, **override})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert User.objects.count() == count


def test_xss_name_is_escaped_in_user_list(client, tenant_admin):
    client.force_login(tenant_admin)
    client.post("/users/new/", {**NEW_USER, "first_name": "<img src=x onerror=alert(1)>"})
    html = client.get("/users/").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_admin_edits_user(client, tenant_admin, staff):
    client.force_login(tenant_admin)
    response = client.post(
        f"/users/{staff.pk}/edit/",
        {
            "first_name": "Sam",
            "last_name": "Staff",
            "email": "s@example.com",
            "phone": "",
            "role": "tenant_admin",
        },
    )
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.first_name == "Sam" and staff.role == "tenant_admin"


def test_admin_suspends_and_activates_user(client, tenant_admin, staff):
    client.force_login(tenant_admin)
    response = client.post(f"/users/{staff.pk}/suspend/", {"reason": "Left"}, follow=True)
    assert "acme-staff has been suspended." in response.content.decode()
    staff.refresh_from_db()
    assert staff.is_suspended and staff.suspension_reason == "Left"
    response = client.post(f"/users/{staff.pk}/suspend/", {"reason": "Again"}, follow=True)
    assert "already suspended" in response.content.decode()
    response = client.post(f"/users/{staff.pk}/activate/", follow=True)
    assert "acme-staff has been activated." in response.content.decode()
    staff.refresh_from_db()
    assert not staff.is_suspended


def test_suspend_without_reason_changes_nothing(client, tenant_admin, staff):
    client.force_login(tenant_admin)
    response = client.post(f"/users/{staff.pk}/suspend/", {"reason": "  "}, follow=True)
    assert "Give a reason" in response.content.decode()
    staff.refresh_from_db()
    assert not staff.is_suspended


def test_admin_cannot_delete_or_suspend_self(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post(f"/users/{tenant_admin.pk}/delete/", follow=True)
    assert "cannot delete your own account" in response.content.decode()
    response = client.post(f"/users/{tenant_admin.pk}/suspend/", {"reason": "x"}, follow=True)
    assert "cannot suspend your own account" in response.content.decode()
    assert User.objects.filter(pk=tenant_admin.pk, status="active").exists()


def test_admin_deletes_user(client, tenant_admin, staff):
    client.force_login(tenant_admin)
    assert "Delete" in client.get(f"/users/{staff.pk}/delete/").content.decode()
    response = client.post(f"/users/{staff.pk}/delete/", follow=True)
    assert "acme-staff has been deleted." in response.content.decode()
    assert not User.objects.filter(pk=staff.pk).exists()


def test_staff_see_users_but_no_buttons_and_403_on_every_change(client, tenant_admin, staff):
    other = TenantStaffFactory(tenant=staff.tenant, username="acme-clerk")
    client.force_login(staff)
    html = client.get("/users/").content.decode()
    assert "acme-admin" in html and "acme-clerk" in html
    for marker in ('id="add-user"', "/suspend/", "/delete/", "/edit/", "/activate/"):
        assert marker not in html
    count = User.objects.count()
    assert client.get("/users/new/").status_code == 403
    assert client.post("/users/new/", NEW_USER).status_code == 403
    assert (
        client.post(f"/users/{other.pk}/edit/", {"first_name": "X", "role": "staff"}).status_code
        == 403
    )
    assert client.post(f"/users/{other.pk}/suspend/", {"reason": "x"}).status_code == 403
    assert client.post(f"/users/{other.pk}/activate/").status_code == 403
    assert client.post(f"/users/{other.pk}/delete/").status_code == 403
    other.refresh_from_db()
    assert User.objects.count() == count and other.first_name != "X" and not other.is_suspended


def test_admin_cannot_reach_another_tenants_user(client, tenant_admin, other_admin):
    client.force_login(tenant_admin)
    for url in (f"/users/{other_admin.pk}/edit/", f"/users/{other_admin.pk}/delete/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/users/{other_admin.pk}/suspend/", {"reason": "x"}).status_code == 404
    assert client.post(f"/users/{other_admin.pk}/delete/").status_code == 404
    other_admin.refresh_from_db()
    assert not other_admin.is_suspended


def test_system_admin_gets_403_on_tenant_pages(client, system_admin):
    client.force_login(system_admin)
    assert client.get("/").status_code == 302  # → the system tenants page
    assert client.get("/users/").status_code == 403


def test_lockout_that_ran_out_lets_user_in(client, tenant, settings):
    user = TenantAdminFactory(tenant=tenant, username="late")
    User.objects.filter(pk=user.pk).update(
        status="suspended",
        suspended_until=timezone.now() - timedelta(minutes=1),
        suspension_reason="locked",
    )
    response = login_post(client, "late")
    assert response.status_code == 302
    assert reverse("tenants:dashboard") == response["Location"]


@pytest.mark.parametrize(
    "url", ["/users/new/", "/accounts/profile/", "/accounts/password/", "/settings/"]
)
def test_every_form_post_needs_the_csrf_token(tenant_admin, url):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_admin)
    assert "csrfmiddlewaretoken" in client.get(url).content.decode()
    count = User.objects.count()
    assert (
        client.post(url, {**NEW_USER, "name": "X", "contact_email": "a@b.example"}).status_code
        == 403
    )
    assert User.objects.count() == count


def test_register_post_needs_the_csrf_token(db):
    from django.test import Client

    from tenants.models import Tenant

    response = Client(enforce_csrf_checks=True).post("/register/", {"name": "X"})
    assert response.status_code == 403 and not Tenant.objects.filter(name="X").exists()
