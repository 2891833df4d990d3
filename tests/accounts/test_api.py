"""/api/users/: tenant-scoped accounts; admins manage their tenant's, staff read and edit only
their own profile; nobody reaches another tenant's accounts (404)."""

import pytest
from django.middleware.csrf import get_token
from rest_framework.test import APIClient

from accounts.models import User
from tests.conftest import bearer
from tests.factories import DEFAULT_PASSWORD, TenantStaffFactory
from tests.roles import READ_TENANT_A, by_role

# Tenants A (acme: acme-admin, acme-staff) and B (beta: beta-admin) exist in every test.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_tenants")]


def usernames(response):
    return {row["username"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("role", "expected", "visible"),
    [
        ("system_admin", 200, {"root-admin", "acme-admin", "acme-staff", "beta-admin"}),
        ("tenant_admin", 200, {"acme-admin", "acme-staff"}),
        ("staff", 200, {"acme-admin", "acme-staff"}),
        ("other_admin", 200, {"beta-admin"}),
        ("anonymous", 401, None),
    ],
)
def test_list_users(api_as, role, expected, visible):
    response = api_as(role).get("/api/users/")
    assert response.status_code == expected
    if visible is not None:
        assert usernames(response) == visible


@by_role(**READ_TENANT_A)
def test_retrieve_a_tenant_a_user(api_as, staff, role, expected):
    response = api_as(role).get(f"/api/users/{staff.pk}/")
    assert response.status_code == expected
    if expected == 200:
        body = response.json()
        assert body["username"] == "acme-staff"
        assert "password" not in body


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("system_admin", 201),
        ("tenant_admin", 201),
        ("staff", 403),
        ("other_admin", 400),  # tenant A is not among the tenants B's admin may choose
        ("anonymous", 401),
    ],
)
def test_create_a_user_in_tenant_a(api_as, tenant, role, expected):
    response = api_as(role).post(
        "/api/users/",
        {"username": "acme-new", "password": "Fresh-Pass-93", "role": "staff", "tenant": tenant.pk},
    )
    assert response.status_code == expected
    assert User.objects.filter(username="acme-new").exists() == (expected == 201)
    if expected == 201:
        assert response.json()["tenant"] == tenant.pk
        assert User.objects.get(username="acme-new").check_password("Fresh-Pass-93")
    if expected == 400:
        assert "tenant" in response.json()["error"]["fields"]


def test_tenant_admin_creates_in_own_tenant_by_default(api_as, tenant):
    response = api_as("tenant_admin").post(
        "/api/users/", {"username": "acme-two", "password": "Fresh-Pass-93", "role": "staff"}
    )
    assert response.status_code == 201
    assert User.objects.get(username="acme-two").tenant == tenant


def test_create_user_bad_input_is_refused_with_field_errors(api_as, tenant):
    client = api_as("tenant_admin")
    response = client.post(
        "/api/users/", {"username": "acme-staff", "password": "123", "role": "staff"}
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields["username"] == ["That username is already taken."]
    response = client.post(
        "/api/users/", {"username": "weak", "password": "123", "role": "staff", "nick": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"nick": ["Unknown field."]}
    response = client.post("/api/users/", {"username": "weak", "password": "123", "role": "staff"})
    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    response = client.post("/api/users/", {"username": "x", "password": "Fresh-Pass-93"})
    assert response.json()["error"]["fields"] == {"role": ["This field is required."]}
    assert not User.objects.filter(username__in=["weak", "x"]).exists()


def test_tenant_admin_cannot_create_a_system_admin(api_as):
    response = api_as("tenant_admin").post(
        "/api/users/", {"username": "sneaky", "password": "Fresh-Pass-93", "role": "system_admin"}
    )
    assert response.status_code in {400, 403}
    assert not User.objects.filter(username="sneaky").exists()


def test_system_admin_must_name_the_tenant_of_a_tenant_user(api_as):
    response = api_as("system_admin").post(
        "/api/users/", {"username": "orphan", "password": "Fresh-Pass-93", "role": "staff"}
    )
    assert response.status_code == 400
    assert "tenant" in response.json()["error"]["fields"]


@by_role(system_admin=200, tenant_admin=200, staff=403, other_admin=404, anonymous=401)
def test_update_a_tenant_a_user(api_as, staff, role, expected):
    response = api_as(role).patch(f"/api/users/{staff.pk}/", {"first_name": "Wanjiru"})
    assert response.status_code == expected
    staff.refresh_from_db()
    assert (staff.first_name == "Wanjiru") == (expected == 200)


def test_admin_changes_role_but_not_their_own(api_as, staff, tenant_admin):
    client = api_as("tenant_admin")
    response = client.patch(f"/api/users/{staff.pk}/", {"role": "tenant_admin"})
    assert response.status_code == 200
    assert response.json()["role"] == "tenant_admin"
    response = client.patch(f"/api/users/{tenant_admin.pk}/", {"role": "staff"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["role"] == ["You cannot change your own role."]


@by_role(system_admin=204, tenant_admin=204, staff=403, other_admin=404, anonymous=401)
def test_delete_a_tenant_a_user(api_as, tenant, role, expected):
    victim = TenantStaffFactory(tenant=tenant, username="acme-temp")
    response = api_as(role).delete(f"/api/users/{victim.pk}/")
    assert response.status_code == expected
    assert User.objects.filter(pk=victim.pk).exists() == (expected != 204)


def test_admin_cannot_delete_or_suspend_themselves(api_as, tenant_admin):
    client = api_as("tenant_admin")
    assert client.delete(f"/api/users/{tenant_admin.pk}/").status_code == 409
    response = client.post(f"/api/users/{tenant_admin.pk}/suspend/", {"reason": "Holiday"})
    assert response.status_code == 409
    assert User.objects.get(pk=tenant_admin.pk).status == "active"


@by_role(system_admin=200, tenant_admin=200, staff=403, other_admin=404, anonymous=401)
def test_suspend_a_tenant_a_user(api_as, tenant, role, expected):
    victim = TenantStaffFactory(tenant=tenant, username="acme-temp")
    response = api_as(role).post(f"/api/users/{victim.pk}/suspend/", {"reason": "Left"})
    assert response.status_code == expected
    victim.refresh_from_db()
    assert victim.status == ("suspended" if expected == 200 else "active")


def test_suspended_users_token_is_refused_at_once_and_works_again_after_activation(api_as, staff):
    staff_client = api_as("staff")
    admin = api_as("tenant_admin")
    assert staff_client.get("/api/users/me/").status_code == 200

    assert admin.post(f"/api/users/{staff.pk}/suspend/", {}).status_code == 400
    response = admin.post(f"/api/users/{staff.pk}/suspend/", {"reason": "Till audit ends"})
    assert response.status_code == 200
    assert response.json()["status"] == "suspended"
    assert admin.post(f"/api/users/{staff.pk}/suspend/", {"reason": "x"}).status_code == 409

    refused = staff_client.get("/api/users/me/")
    assert refused.status_code == 401
    assert refused.json()["error"] == {
        "code": "account_blocked",
        "message": "Your account has been suspended. Contact your administrator. "
        "Reason: Till audit ends",
    }

    assert admin.post(f"/api/users/{staff.pk}/activate/").status_code == 200
    assert staff_client.get("/api/users/me/").status_code == 200
    assert admin.post(f"/api/users/{staff.pk}/activate/").status_code == 409


@pytest.mark.parametrize(
    ("role", "expected"),
    [("system_admin", 200), ("tenant_admin", 200), ("staff", 403), ("other_admin", 404)],
)
def test_activate_a_suspended_tenant_a_user(api_as, tenant, role, expected):
    victim = TenantStaffFactory(
        tenant=tenant, username="acme-temp", status=User.Status.SUSPENDED, suspension_reason="Audit"
    )
    response = api_as(role).post(f"/api/users/{victim.pk}/activate/")
    assert response.status_code == expected
    victim.refresh_from_db()
    assert victim.status == ("active" if expected == 200 else "suspended")


@pytest.mark.parametrize("role", ["system_admin", "tenant_admin", "staff", "other_admin"])
def test_me_shows_and_edits_own_profile(api_as, role, request):
    user = request.getfixturevalue(role)
    client = api_as(role)
    assert client.get("/api/users/me/").json()["username"] == user.username
    response = client.patch("/api/users/me/", {"first_name": "Amina", "phone": "0712 345 678"})
    assert response.status_code == 200
    assert response.json()["first_name"] == "Amina"
    user.refresh_from_db()
    assert (user.first_name, user.phone) == ("Amina", "0712345678")


def test_me_cannot_change_own_role_or_unknown_fields(api_as, staff):
    response = api_as("staff").patch("/api/users/me/", {"role": "tenant_admin"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"role": ["Unknown field."]}
    staff.refresh_from_db()
    assert staff.role == "staff"


def test_me_needs_authentication(api_client):
    response = api_client.get("/api/users/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_change_own_password_revokes_older_tokens(api_client, staff):
    old = bearer(staff)
    api_client.credentials(HTTP_AUTHORIZATION=old)
    wrong = api_client.post(
        "/api/users/me/password/", {"old_password": "nope", "new_password": "Brand-New-Pass-7"}
    )
    assert wrong.status_code == 400
    assert list(wrong.json()["error"]["fields"]) == ["old_password"]
    weak = api_client.post(
        "/api/users/me/password/", {"old_password": DEFAULT_PASSWORD, "new_password": "abc"}
    )
    assert weak.status_code == 400
    assert list(weak.json()["error"]["fields"]) == ["new_password"]

    response = api_client.post(
        "/api/users/me/password/",
        {"old_password": DEFAULT_PASSWORD, "new_password": "Brand-New-Pass-7"},
    )
    assert response.status_code == 204
    staff.refresh_from_db()
    assert staff.check_password("Brand-New-Pass-7")
    refused = api_client.get("/api/users/me/")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "password_changed"
    tokens = APIClient().post(
        "/api/auth/token/", {"username": "acme-staff", "password": "Brand-New-Pass-7"}
    )
    assert tokens.status_code == 200


def test_filters_and_search(api_as, tenant):
    client = api_as("system_admin")
    assert usernames(client.get("/api/users/", {"role": "staff"})) == {"acme-staff"}
    assert usernames(client.get("/api/users/", {"tenant": tenant.pk})) == {
        "acme-admin",
        "acme-staff",
    }
    assert usernames(client.get("/api/users/", {"search": "beta"})) == {"beta-admin"}
    assert client.get("/api/users/", {"role": "king"}).status_code == 400
    # Tenant users filtering by another tenant's id just see nothing (no existence oracle).
    other = api_as("tenant_admin").get("/api/users/", {"tenant": tenant.pk + 1})
    assert other.status_code == 200 and other.json()["results"] == []


def test_pagination(api_as, tenant):
    TenantStaffFactory.create_batch(5, tenant=tenant)
    client = api_as("tenant_admin")
    page = client.get("/api/users/", {"page_size": 3}).json()
    assert page["count"] == 7 and len(page["results"]) == 3 and page["next"]
    last = client.get("/api/users/", {"page_size": 3, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    beyond = client.get("/api/users/", {"page_size": 3, "page": 9})
    assert beyond.status_code == 404
    assert beyond.json()["error"]["code"] == "not_found"


def test_session_auth_works_for_the_browser_with_csrf(staff, tenant_admin):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(tenant_admin)
    assert client.get("/api/users/me/").json()["username"] == "acme-admin"
    refused = client.patch(f"/api/users/{staff.pk}/", {"first_name": "X"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    page = client.get("/api/users/me/")  # the page the browser would load sets the cookie
    token = get_token(page.wsgi_request)
    client.cookies["csrftoken"] = token
    response = client.patch(
        f"/api/users/{staff.pk}/", {"first_name": "X"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200


def test_session_of_a_user_suspended_meanwhile_is_refused(api_as, staff):
    client = APIClient()
    client.force_login(staff)
    assert client.get("/api/users/me/").status_code == 200
    api_as("tenant_admin").post(f"/api/users/{staff.pk}/suspend/", {"reason": "Audit"})
    response = client.get("/api/users/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "account_blocked"
