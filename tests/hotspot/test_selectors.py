"""Package and hotspot-user reads: scoped, searchable, filterable."""

import pytest

from config.errors import NotFound
from hotspot import selectors
from tests.factories import HotspotUserFactory, PackageFactory


@pytest.fixture
def rows(tenant, other_tenant):
    daily = PackageFactory(tenant=tenant, name="Daily", price=100)
    hourly = PackageFactory(tenant=tenant, name="Hourly", price=20)
    retired = PackageFactory(tenant=tenant, name="Old", price=5, is_active=False)
    beta = PackageFactory(tenant=other_tenant, name="Daily", price=90)
    return {
        "daily": daily,
        "hourly": hourly,
        "retired": retired,
        "beta": beta,
        "alice": HotspotUserFactory(package=daily, username="alice", phone="254711000111"),
        "bob": HotspotUserFactory(package=hourly, username="bob", status="expired"),
        "beta_user": HotspotUserFactory(package=beta, username="alice2", phone="254711000111"),
    }


def test_packages(staff, rows):
    assert list(selectors.package_list(user=staff)) == [
        rows["retired"],
        rows["hourly"],
        rows["daily"],
    ]
    assert list(selectors.package_list(user=staff, active=True)) == [rows["hourly"], rows["daily"]]
    assert list(selectors.package_list(user=staff, active=False)) == [rows["retired"]]
    assert list(selectors.package_list(user=staff, search="dai")) == [rows["daily"]]
    assert selectors.package_get(user=staff, package_id=rows["daily"].pk) == rows["daily"]
    with pytest.raises(NotFound):
        selectors.package_get(user=staff, package_id=rows["beta"].pk)


def test_hotspot_users(staff, system_admin, rows):
    assert set(selectors.hotspot_user_list(user=staff)) == {rows["alice"], rows["bob"]}
    assert list(selectors.hotspot_user_list(user=staff, search="0711 000")) == [rows["alice"]]
    assert list(selectors.hotspot_user_list(user=staff, status="expired")) == [rows["bob"]]
    assert set(selectors.hotspot_user_list(user=system_admin, search="alice")) == {
        rows["alice"],
        rows["beta_user"],
    }
    assert selectors.hotspot_user_get(user=staff, hotspot_user_id=rows["bob"].pk) == rows["bob"]
    for bad in (rows["beta_user"].pk, "nope"):
        with pytest.raises(NotFound):
            selectors.hotspot_user_get(user=staff, hotspot_user_id=bad)
