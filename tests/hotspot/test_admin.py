"""Packages and hotspot users in the Django admin: created/changed/disabled through services."""

from decimal import Decimal

from hotspot.models import HotspotUser, Package
from tests.admin_helpers import csrf_token, messages_of, run_action
from tests.factories import HotspotUserFactory, PackageFactory

PACKAGES = "/admin/hotspot/package/"
HOTSPOT_USERS = "/admin/hotspot/hotspotuser/"


def test_package_list_and_filters(sysadmin_client, tenant, other_tenant):
    PackageFactory(tenant=tenant, name="Daily")
    PackageFactory(tenant=other_tenant, name="Weekly", is_active=False)
    page = sysadmin_client.get(PACKAGES, {"is_active__exact": "1"})
    assert "Daily" in page.text and "Weekly" not in page.text
    assert "Weekly" in sysadmin_client.get(PACKAGES, {"q": "beta"}).text


def test_add_and_edit_package_through_services(sysadmin_client, system_admin, tenant, signal_log):
    url = PACKAGES + "add/"
    data = {
        "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
        "tenant": tenant.pk,
        "name": "Daily",
        "price": "50.00",
        "duration_minutes": 1440,
        "data_limit_mb": "",
        "speed_limit": "5M/2M",
        "is_active": "on",
    }
    assert sysadmin_client.post(url, data).status_code == 302
    package = Package.objects.get(name="Daily")
    assert package.currency == "KES" and package.data_limit_mb is None
    response = sysadmin_client.post(url, {**data, "name": "DAILY"})
    assert response.status_code == 200
    assert "already has a package with that name" in response.text
    url = f"{PACKAGES}{package.pk}/change/"
    data = {
        "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
        "name": "Daily",
        "price": "60.00",
        "duration_minutes": 1440,
        "data_limit_mb": "",
        "speed_limit": "5M/2M",
    }  # is_active unticked: off sale
    assert sysadmin_client.post(url, data).status_code == 302
    package.refresh_from_db()
    assert package.price == Decimal("60.00") and not package.is_active
    assert signal_log == [
        ("package_created", {"package": package, "by": system_admin}),
        (
            "package_updated",
            {"package": package, "changed": ["price", "is_active"], "by": system_admin},
        ),
    ]


def test_add_hotspot_user_through_the_service(sysadmin_client, system_admin, package, signal_log):
    url = HOTSPOT_USERS + "add/"
    data = {
        "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
        "tenant": package.tenant_id,
        "package": package.pk,
        "phone": "+254712345678",
        "username": "",
        "password": "",
    }
    assert sysadmin_client.post(url, data).status_code == 302
    hotspot_user = HotspotUser.objects.get()
    assert hotspot_user.username.startswith("hs-") and hotspot_user.phone == "254712345678"
    assert signal_log == [
        ("hotspot_user_created", {"hotspot_user": hotspot_user, "by": system_admin})
    ]
    response = sysadmin_client.post(url, {**data, "username": hotspot_user.username})
    assert response.status_code == 200
    assert "Hotspot user with this Tenant and Username already exists." in response.text
    assert HotspotUser.objects.count() == 1


def test_hotspot_user_list_masks_phones_and_is_read_only(sysadmin_client, package):
    hotspot_user = HotspotUserFactory(package=package, phone="254712345678")
    page = sysadmin_client.get(HOTSPOT_USERS)
    assert "2547****678" in page.text and "254712345678" not in page.text
    detail = sysadmin_client.get(f"{HOTSPOT_USERS}{hotspot_user.pk}/change/")
    assert detail.status_code == 200 and "254712345678" not in detail.text
    assert 'name="_save"' not in detail.text


def test_disable_action(sysadmin_client, system_admin, package, signal_log):
    active = HotspotUserFactory(package=package, username="alice")
    expired = HotspotUserFactory(package=package, username="bob", status="expired")
    response = run_action(
        sysadmin_client, HOTSPOT_USERS, "disable_hotspot_users", [active, expired]
    )
    messages = messages_of(response)
    assert ("success", "Disabled 1: alice.") in messages
    assert ("error", "bob is already expired.") in messages
    assert HotspotUser.objects.get(pk=active.pk).status == "disabled"
    assert [name for name, _ in signal_log] == ["hotspot_user_disabled"]
