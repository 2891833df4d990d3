"""/api/tenants/: system admins run the life cycle; tenant users see only their own."""

import pytest

from tenants.models import Tenant
from tests.conftest import bearer
from tests.factories import TenantFactory, TenantStaffFactory
from tests.roles import READ_TENANT_A, by_role

# Tenants A (acme: acme-admin, acme-staff) and B (beta: beta-admin) exist in every test.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_tenants")]


@pytest.fixture
def pending(db):
    return TenantFactory(name="Gamma Spots", slug="gamma", status=Tenant.Status.PENDING)


@pytest.mark.parametrize(
    ("role", "expected", "slugs"),
    [
        ("system_admin", 200, {"acme", "beta"}),
        ("tenant_admin", 200, {"acme"}),
        ("staff", 200, {"acme"}),
        ("other_admin", 200, {"beta"}),
        ("anonymous", 401, None),
    ],
)
def test_list_shows_only_tenants_the_role_may_see(api_as, role, expected, slugs):
    response = api_as(role).get("/api/tenants/")
    assert response.status_code == expected
    if slugs is not None:
        assert {row["slug"] for row in response.json()["results"]} == slugs


def test_tenant_json_never_contains_the_payment_secret(api_as, tenant):
    response = api_as("system_admin").get(f"/api/tenants/{tenant.pk}/")
    assert response.status_code == 200
    assert tenant.payment_secret not in response.content.decode()
    assert "payment_secret" not in response.json()


@by_role(**READ_TENANT_A)
def test_retrieve_tenant_a(api_as, tenant, role, expected):
    response = api_as(role).get(f"/api/tenants/{tenant.pk}/")
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["name"] == "Acme WiFi"


@by_role(system_admin=200, tenant_admin=200, staff=403, other_admin=404, anonymous=401)
def test_update_tenant_a_contact_details(api_as, tenant, role, expected):
    response = api_as(role).patch(
        f"/api/tenants/{tenant.pk}/", {"contact_phone": "+254 711 000 999"}, format="json"
    )
    assert response.status_code == expected
    tenant.refresh_from_db()
    if expected == 200:
        assert response.json()["contact_phone"] == "254711000999"
        assert tenant.contact_phone == "254711000999"
    else:
        assert tenant.contact_phone == "254700000001"


def test_update_refuses_bad_input_and_fields_it_may_not_change(api_as, tenant):
    client = api_as("tenant_admin")
    response = client.patch(
        f"/api/tenants/{tenant.pk}/", {"contact_email": "not-an-email"}, format="json"
    )
    assert response.status_code == 400
    assert "contact_email" in response.json()["error"]["fields"]
    response = client.patch(f"/api/tenants/{tenant.pk}/", {"status": "active"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"status": ["Unknown field."]}
    response = client.patch(f"/api/tenants/{tenant.pk}/", {"contact_phone": "12"}, format="json")
    assert response.status_code == 400
    assert "contact_phone" in response.json()["error"]["fields"]
    tenant.refresh_from_db()
    assert (tenant.contact_email, tenant.contact_phone) == ("ops@acme.example", "254700000001")


@by_role(system_admin=201, tenant_admin=403, staff=403, other_admin=403, anonymous=401)
def test_create_tenant(api_as, role, expected):
    response = api_as(role).post(
        "/api/tenants/", {"name": "Delta Hotspots", "contact_email": "ops@delta.example"}
    )
    assert response.status_code == expected
    assert Tenant.objects.filter(slug="delta-hotspots").exists() == (expected == 201)
    if expected == 201:
        assert response.json()["status"] == "active"


def test_create_tenant_with_taken_slug_is_a_field_error(api_as):
    response = api_as("system_admin").post(
        "/api/tenants/", {"name": "Acme", "slug": "acme", "contact_email": "x@acme.example"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["slug"] == ["That short name is already taken."]


@by_role(system_admin=200, tenant_admin=403, staff=403, other_admin=403, anonymous=401)
def test_approve_pending_tenant(api_as, pending, role, expected):
    response = api_as(role).post(f"/api/tenants/{pending.pk}/approve/")
    assert response.status_code == expected
    pending.refresh_from_db()
    assert pending.status == ("active" if expected == 200 else "pending")


def test_approving_an_active_tenant_is_a_conflict(api_as, tenant):
    response = api_as("system_admin").post(f"/api/tenants/{tenant.pk}/approve/")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "invalid_transition",
        "message": "Acme WiFi is active; only a pending tenant can be approved.",
    }


@by_role(system_admin=200, tenant_admin=403, staff=403, other_admin=403, anonymous=401)
def test_suspend_tenant_a(api_as, tenant, role, expected):
    response = api_as(role).post(f"/api/tenants/{tenant.pk}/suspend/", {"reason": "Unpaid"})
    assert response.status_code == expected
    tenant.refresh_from_db()
    assert tenant.status == ("suspended" if expected == 200 else "active")


def test_suspend_needs_a_reason_and_suspended_tenant_users_lose_api_access(api_as, tenant, staff):
    staff_client = api_as("staff")
    assert staff_client.get("/api/tenants/").status_code == 200
    admin = api_as("system_admin")
    response = admin.post(f"/api/tenants/{tenant.pk}/suspend/", {"reason": "  "})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["reason"]

    response = admin.post(f"/api/tenants/{tenant.pk}/suspend/", {"reason": "Unpaid invoices"})
    assert response.status_code == 200
    assert response.json()["suspension_reason"] == "Unpaid invoices"
    refused = staff_client.get("/api/tenants/")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "account_blocked"
    assert "suspended" in refused.json()["error"]["message"]

    again = admin.post(f"/api/tenants/{tenant.pk}/suspend/", {"reason": "Again"})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("system_admin", 200),
        ("tenant_admin", 403),
        ("other_admin", 401),  # B's own admin is blocked while B is suspended
        ("anonymous", 401),
    ],
)
def test_reactivate_suspended_tenant(api_as, other_tenant, role, expected):
    other_tenant.status = Tenant.Status.SUSPENDED
    other_tenant.suspension_reason = "Unpaid"
    other_tenant.save()
    response = api_as(role).post(f"/api/tenants/{other_tenant.pk}/reactivate/")
    assert response.status_code == expected
    other_tenant.refresh_from_db()
    assert other_tenant.status == ("active" if expected == 200 else "suspended")


def test_reactivating_an_active_tenant_is_a_conflict(api_as, tenant):
    assert api_as("system_admin").post(f"/api/tenants/{tenant.pk}/reactivate/").status_code == 409


def test_filter_by_status_and_search(api_as, pending):
    client = api_as("system_admin")
    rows = client.get("/api/tenants/", {"status": "pending"}).json()["results"]
    assert [row["slug"] for row in rows] == ["gamma"]
    rows = client.get("/api/tenants/", {"search": "beta"}).json()["results"]
    assert [row["slug"] for row in rows] == ["beta"]
    response = client.get("/api/tenants/", {"status": "sleeping"})
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_pending_tenant_users_cannot_use_the_api(api_client, pending):
    waiting = TenantStaffFactory(tenant=pending, username="gamma-staff")
    api_client.credentials(HTTP_AUTHORIZATION=bearer(waiting))
    response = api_client.get("/api/tenants/")
    assert response.status_code == 401
    assert "awaiting approval" in response.json()["error"]["message"]


def test_tenant_json_has_exactly_these_fields(api_as, tenant):
    """The field list lives in tenants.services.DETAIL_FIELDS (shared with the admin): pinned."""
    body = api_as("system_admin").get(f"/api/tenants/{tenant.pk}/").json()
    assert list(body) == [
        *("id", "name", "slug", "contact_email", "contact_phone", "time_zone", "currency"),
        *("status", "suspension_reason", "approved_at", "suspended_at", "created_at", "updated_at"),
    ]
