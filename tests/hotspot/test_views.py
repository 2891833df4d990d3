"""Package and hotspot-user pages: admins change, staff see (and sell), other tenants never."""

from __future__ import annotations

import pytest

from hotspot.models import HotspotUser, Package
from tests.factories import HotspotUserFactory, PackageFactory

pytestmark = pytest.mark.django_db

PACKAGE = {
    "name": "Daily",
    "price": "30.00",
    "duration_minutes": "1440",
    "data_limit_mb": "",
    "speed_limit": "5M/2M",
    "is_active": "on",
}


def test_admin_creates_and_edits_package(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post("/packages/new/", PACKAGE, follow=True)
    assert "Package Daily has been created." in response.content.decode()
    package = Package.objects.get(name="Daily")
    assert package.tenant_id == tenant_admin.tenant_id and package.data_limit_mb is None
    response = client.post(f"/packages/{package.pk}/edit/", {**PACKAGE, "price": "35.00"})
    assert response.status_code == 302
    package.refresh_from_db()
    assert str(package.price) == "35.00"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"name": ""}, "name"),
        ({"price": "-1"}, "price"),
        ({"price": "abc"}, "price"),
        ({"duration_minutes": "0"}, "duration_minutes"),
        ({"data_limit_mb": "-5"}, "data_limit_mb"),
    ],
)
def test_package_bad_input_changes_nothing(client, tenant_admin, override, field):
    client.force_login(tenant_admin)
    response = client.post("/packages/new/", {**PACKAGE, **override})
    assert response.status_code == 400 and response.context["form"].errors[field]
    assert not Package.objects.exists()


def test_duplicate_package_name_is_an_inline_error(client, tenant_admin, package):
    client.force_login(tenant_admin)
    response = client.post("/packages/new/", {**PACKAGE, "name": package.name})
    assert response.status_code == 400
    assert "already has a package" in response.context["form"].errors["name"][0]
    assert Package.objects.count() == 1


def test_staff_see_packages_but_cannot_change(client, staff, package):
    client.force_login(staff)
    html = client.get("/packages/").content.decode()
    assert package.name in html and "/packages/new/" not in html and "/edit/" not in html
    assert client.get("/packages/new/").status_code == 403
    assert client.post("/packages/new/", PACKAGE).status_code == 403
    assert client.post(f"/packages/{package.pk}/edit/", {**PACKAGE}).status_code == 403
    assert Package.objects.count() == 1 and Package.objects.get().name == package.name


def test_other_tenants_package_is_not_found(client, other_admin, package):
    client.force_login(other_admin)
    assert package.name not in client.get("/packages/").content.decode()
    assert client.get(f"/packages/{package.pk}/edit/").status_code == 404


def test_staff_creates_hotspot_user_and_sees_expiry(client, staff, package):
    client.force_login(staff)
    response = client.post(
        "/hotspot-users/new/",
        {"package": package.pk, "phone": "254712345678", "username": ""},
        follow=True,
    )
    created = HotspotUser.objects.get()
    html = response.content.decode()
    assert f"Hotspot user {created.username} created" in html
    assert created.expires_at.strftime("%Y-%m-%d") in html
    assert "2547****678" in html and "254712345678" not in html  # masked phone


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"package": "", "phone": ""}, "package"),
        ({"package": "999999", "phone": ""}, "package"),
        ({"phone": "12ab"}, "phone"),
    ],
)
def test_hotspot_user_bad_input_changes_nothing(client, tenant_admin, package, data, field):
    client.force_login(tenant_admin)
    response = client.post("/hotspot-users/new/", {"package": package.pk, **data})
    assert response.status_code == 400 and response.context["form"].errors[field]
    assert not HotspotUser.objects.exists()


def test_cannot_sell_another_tenants_package(client, tenant_admin, other_tenant):
    foreign = PackageFactory(tenant=other_tenant)
    client.force_login(tenant_admin)
    response = client.post("/hotspot-users/new/", {"package": foreign.pk})
    assert response.status_code == 400 and response.context["form"].errors["package"]
    assert not HotspotUser.objects.exists()


def test_taken_hotspot_username_is_an_inline_error(client, tenant_admin, package):
    HotspotUserFactory(package=package, username="hs-taken")
    client.force_login(tenant_admin)
    response = client.post("/hotspot-users/new/", {"package": package.pk, "username": "hs-taken"})
    assert response.status_code == 400
    assert "already in use" in response.context["form"].errors["username"][0]
    assert HotspotUser.objects.count() == 1


def test_admin_disables_hotspot_user_staff_cannot(client, tenant_admin, staff, package):
    target = HotspotUserFactory(package=package)
    client.force_login(staff)
    assert "/disable/" not in client.get("/hotspot-users/").content.decode()
    assert client.post(f"/hotspot-users/{target.pk}/disable/").status_code == 403
    target.refresh_from_db()
    assert target.status == "active"
    client.force_login(tenant_admin)
    response = client.post(f"/hotspot-users/{target.pk}/disable/", follow=True)
    assert f"Hotspot user {target.username} has been disabled." in response.content.decode()
    response = client.post(f"/hotspot-users/{target.pk}/disable/", follow=True)
    assert "already disabled" in response.content.decode()
    target.refresh_from_db()
    assert target.status == "disabled"


def test_hotspot_user_list_filters_by_status(client, tenant_admin, package):
    HotspotUserFactory(package=package, username="hs-on")
    HotspotUserFactory(package=package, username="hs-off", status="disabled")
    client.force_login(tenant_admin)
    html = client.get("/hotspot-users/", {"status": "disabled"}).content.decode()
    assert "hs-off" in html and "hs-on" not in html
