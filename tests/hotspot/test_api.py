"""/api/packages/ and /api/hotspot-users/: tenant-scoped; admins manage packages, members sell."""

from decimal import Decimal

import pytest

from hotspot.models import HotspotUser, Package
from tests.factories import HotspotUserFactory, PackageFactory
from tests.roles import READ_TENANT_A, by_role

# Tenants A (acme: acme-admin, acme-staff) and B (beta: beta-admin) exist in every test.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_tenants")]


@pytest.fixture
def hotspot_user_a(package_a):
    return HotspotUserFactory(package=package_a, username="hs-acme01", phone="254712345678")


# --- packages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected", "names"),
    [
        ("system_admin", 200, {"Daily", "Weekly"}),
        ("tenant_admin", 200, {"Daily"}),
        ("staff", 200, {"Daily"}),
        ("other_admin", 200, {"Weekly"}),
        ("anonymous", 401, None),
    ],
)
def test_list_packages(api_as, package_a, package_b, role, expected, names):
    response = api_as(role).get("/api/packages/")
    assert response.status_code == expected
    if names is not None:
        assert {row["name"] for row in response.json()["results"]} == names


@by_role(**READ_TENANT_A)
def test_retrieve_package_a(api_as, package_a, role, expected):
    response = api_as(role).get(f"/api/packages/{package_a.pk}/")
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["price"] == "50.00"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("system_admin", 400),  # must say which tenant
        ("tenant_admin", 201),
        ("staff", 403),
        ("other_admin", 201),  # ...in their own tenant B
        ("anonymous", 401),
    ],
)
def test_create_package(api_as, role, expected, request):
    response = api_as(role).post(
        "/api/packages/", {"name": "Hourly", "price": "10.00", "duration_minutes": 60}
    )
    assert response.status_code == expected
    created = Package.objects.filter(name="Hourly")
    assert created.exists() == (expected == 201)
    if expected == 201:
        owner = request.getfixturevalue(role)
        assert created.get().tenant_id == owner.tenant_id == response.json()["tenant"]


def test_system_admin_creates_a_package_for_a_chosen_tenant(api_as, other_tenant):
    response = api_as("system_admin").post(
        "/api/packages/",
        {"tenant": other_tenant.pk, "name": "Night", "price": "20", "duration_minutes": 480},
    )
    assert response.status_code == 201
    assert Package.objects.get(name="Night").tenant == other_tenant


def test_tenant_admin_cannot_create_a_package_in_another_tenant(api_as, other_tenant):
    response = api_as("tenant_admin").post(
        "/api/packages/",
        {"tenant": other_tenant.pk, "name": "Sneaky", "price": "1", "duration_minutes": 5},
    )
    assert response.status_code == 400
    assert "tenant" in response.json()["error"]["fields"]
    assert not Package.objects.filter(name="Sneaky").exists()


def test_package_bad_input_is_refused(api_as, package_a):
    client = api_as("tenant_admin")
    response = client.post(
        "/api/packages/", {"name": "Daily", "price": "-1", "duration_minutes": 0}
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"price", "duration_minutes"}
    response = client.post("/api/packages/", {"name": "daily", "price": "5", "duration_minutes": 5})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["name"] == [
        "This tenant already has a package with that name."
    ]
    huge = client.post("/api/packages/", {"name": "Huge", "price": "5", "duration_minutes": 10**12})
    assert huge.status_code == 400
    assert Package.objects.filter(tenant=package_a.tenant).count() == 1


@by_role(system_admin=200, tenant_admin=200, staff=403, other_admin=404, anonymous=401)
def test_update_package_a(api_as, package_a, role, expected):
    response = api_as(role).patch(
        f"/api/packages/{package_a.pk}/", {"price": "55.00", "is_active": False}
    )
    assert response.status_code == expected
    package_a.refresh_from_db()
    assert (package_a.price, package_a.is_active) == (
        (Decimal("55.00"), False) if expected == 200 else (Decimal("50.00"), True)
    )


def test_filter_packages(api_as, package_a):
    PackageFactory(tenant=package_a.tenant, name="Old", is_active=False)
    client = api_as("staff")
    rows = client.get("/api/packages/", {"is_active": "true"}).json()["results"]
    assert [row["name"] for row in rows] == ["Daily"]
    rows = client.get("/api/packages/", {"search": "old"}).json()["results"]
    assert [row["name"] for row in rows] == ["Old"]


# --- hotspot users -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected", "usernames"),
    [
        ("system_admin", 200, {"hs-acme01", "hs-beta01"}),
        ("tenant_admin", 200, {"hs-acme01"}),
        ("staff", 200, {"hs-acme01"}),
        ("other_admin", 200, {"hs-beta01"}),
        ("anonymous", 401, None),
    ],
)
def test_list_hotspot_users(api_as, hotspot_user_a, package_b, role, expected, usernames):
    HotspotUserFactory(package=package_b, username="hs-beta01")
    response = api_as(role).get("/api/hotspot-users/")
    assert response.status_code == expected
    if usernames is not None:
        assert {row["username"] for row in response.json()["results"]} == usernames


@by_role(**READ_TENANT_A)
def test_retrieve_hotspot_user_a_with_masked_phone(api_as, hotspot_user_a, role, expected):
    response = api_as(role).get(f"/api/hotspot-users/{hotspot_user_a.pk}/")
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["masked_phone"] == "2547****678"
        assert "254712345678" not in response.content.decode()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("system_admin", 201),
        ("tenant_admin", 201),
        ("staff", 201),  # staff sell vouchers at the counter (hotspot.services allows members)
        ("other_admin", 400),  # package A is not among the packages B's admin may choose
        ("anonymous", 401),
    ],
)
def test_create_hotspot_user_for_package_a(api_as, package_a, role, expected):
    response = api_as(role).post(
        "/api/hotspot-users/", {"package": package_a.pk, "phone": "0712 000 111"}
    )
    assert response.status_code == expected
    assert HotspotUser.objects.filter(package=package_a).count() == (expected == 201)
    if expected == 201:
        body = response.json()
        assert body["username"].startswith("hs-") and len(body["password"]) == 8
        assert body["masked_phone"] == "0712****111"
        assert body["tenant"] == package_a.tenant_id
    if expected == 400:
        assert "package" in response.json()["error"]["fields"]


def test_create_hotspot_user_bad_input(api_as, package_a, hotspot_user_a):
    client = api_as("staff")
    response = client.post("/api/hotspot-users/", {"package": package_a.pk, "phone": "12"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["phone"]
    response = client.post(
        "/api/hotspot-users/", {"package": package_a.pk, "username": "hs-acme01"}
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["username"]
    package_a.is_active = False
    package_a.save()
    response = client.post("/api/hotspot-users/", {"package": package_a.pk})
    assert response.json()["error"]["fields"] == {"package": ["That package is not on sale."]}
    assert HotspotUser.objects.count() == 1


@by_role(system_admin=200, tenant_admin=200, staff=403, other_admin=404, anonymous=401)
def test_disable_hotspot_user_a(api_as, hotspot_user_a, role, expected):
    response = api_as(role).post(f"/api/hotspot-users/{hotspot_user_a.pk}/disable/")
    assert response.status_code == expected
    hotspot_user_a.refresh_from_db()
    assert hotspot_user_a.status == ("disabled" if expected == 200 else "active")


def test_disabling_twice_is_a_conflict(api_as, hotspot_user_a):
    client = api_as("tenant_admin")
    assert client.post(f"/api/hotspot-users/{hotspot_user_a.pk}/disable/").status_code == 200
    response = client.post(f"/api/hotspot-users/{hotspot_user_a.pk}/disable/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"


def test_filter_hotspot_users_by_status(api_as, hotspot_user_a, package_a):
    HotspotUserFactory(package=package_a, username="hs-acme02", status="disabled")
    client = api_as("staff")
    rows = client.get("/api/hotspot-users/", {"status": "disabled"}).json()["results"]
    assert [row["username"] for row in rows] == ["hs-acme02"]
    assert client.get("/api/hotspot-users/", {"status": "zombie"}).status_code == 400
