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
    # The page shows times in the tenant's zone; a UTC date differs near midnight.
    assert created.expires_at.astimezone(staff.tenant.tzinfo).strftime("%Y-%m-%d %H:%M") in html
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


def test_dashboard_online_on_the_hotspot_card(client, tenant, tenant_admin, other_tenant):
    from tests.factories import HotspotSessionFactory, RouterFactory

    gate = RouterFactory(tenant=tenant, name="Gate")
    RouterFactory(tenant=tenant, name="Idle")
    HotspotSessionFactory(router=gate)
    HotspotSessionFactory(router=gate)
    HotspotSessionFactory(router=gate, status="closed")
    HotspotSessionFactory(router=RouterFactory(tenant=other_tenant, name="Theirs"))
    client.force_login(tenant_admin)
    html = client.get("/").content.decode()
    assert "Online on the hotspot" in html and "Theirs" not in html
    assert 'data-stat="hotspot_online" data-value="2"' in html
    assert f'data-stat="router_{gate.pk}" data-value="2"' in html
    stats = client.get("/dashboard/hotspot-online/").json()
    assert stats["hotspot_online"] == 2 and stats[f"router_{gate.pk}"] == 2
    assert len(stats) == 3  # total + two own routers, none of the other tenant's


def test_sessions_page_active_first_and_tenant_scoped(client, tenant, staff, other_tenant):
    from tests.factories import HotspotSessionFactory, RouterFactory

    router = RouterFactory(tenant=tenant, name="Gate")
    HotspotSessionFactory(router=router, username="closed-one", status="closed")
    HotspotSessionFactory(router=router, username="<i>online</i>", input_octets=2048)
    HotspotSessionFactory(router=RouterFactory(tenant=other_tenant), username="not-mine")
    client.force_login(staff)
    html = client.get("/hotspot-sessions/").content.decode()
    assert "not-mine" not in html and "&lt;i&gt;online&lt;/i&gt;" in html
    assert html.index("&lt;i&gt;online") < html.index("closed-one")
    assert "2.0\xa0KB" in html
    html = client.get("/hotspot-sessions/?status=closed").content.decode()
    assert "closed-one" in html and "online" not in html.split("hotspot-session-table")[1]


@pytest.mark.usefixtures("two_tenants")
def test_sessions_api_is_tenant_scoped(api_as, tenant, other_tenant):
    from tests.factories import HotspotSessionFactory, RouterFactory

    HotspotSessionFactory(router=RouterFactory(tenant=tenant), username="a-user")
    HotspotSessionFactory(router=RouterFactory(tenant=other_tenant), username="b-user")
    rows = api_as("staff").get("/api/hotspot-sessions/").json()["results"]
    assert [r["username"] for r in rows] == ["a-user"]
    assert rows[0]["router_name"] and rows[0]["status"] == "active"
    rows = api_as("other_admin").get("/api/hotspot-sessions/").json()["results"]
    assert [r["username"] for r in rows] == ["b-user"]
    assert api_as("anonymous").get("/api/hotspot-sessions/").status_code == 401
