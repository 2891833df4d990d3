"""Packages and hotspot users through the services: creation, disabling, idempotent expiry."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from config.errors import InvalidTransition, PermissionDenied
from hotspot import services
from hotspot.models import HotspotUser, Package
from tenants.models import Tenant
from tests.factories import HotspotUserFactory, PackageFactory, TenantFactory

# --- packages -----------------------------------------------------------------------------


def test_tenant_admin_creates_a_package(tenant, tenant_admin, signal_log):
    package = services.package_create(
        tenant=tenant,
        name=" Daily 1GB ",
        price=Decimal("50"),
        duration_minutes=1440,
        data_limit_mb=1024,
        speed_limit="5M/2M",
        by=tenant_admin,
    )
    assert package.name == "Daily 1GB" and package.currency == "KES"
    assert package.duration == timedelta(days=1)
    assert signal_log == [("package_created", {"package": package, "by": tenant_admin})]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "hourly"}, "name"),  # taken, case-insensitively
        ({"price": Decimal("-1")}, "price"),
        ({"price": "ten"}, "price"),
        ({"duration_minutes": 0}, "duration_minutes"),
    ],
)
def test_package_create_rejects_bad_input(tenant, tenant_admin, signal_log, kwargs, field):
    PackageFactory(tenant=tenant, name="Hourly")
    arguments = {
        "tenant": tenant,
        "name": "Weekly",
        "price": Decimal("300"),
        "duration_minutes": 10080,
        "by": tenant_admin,
        **kwargs,
    }
    with pytest.raises(ValidationError) as err:
        services.package_create(**arguments)
    assert field in err.value.message_dict
    assert list(Package.objects.values_list("name", flat=True)) == ["Hourly"]
    assert signal_log == []


@pytest.mark.parametrize("who", ["staff", "other_admin"])
def test_only_the_tenants_admins_manage_packages(request, tenant, package, signal_log, who):
    by = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        services.package_create(
            tenant=tenant, name="Free", price=Decimal("1"), duration_minutes=5, by=by
        )
    with pytest.raises(PermissionDenied):
        services.package_update(package=package, data={"price": Decimal("1")}, by=by)
    package.refresh_from_db()
    assert package.price == Decimal("50.00")
    assert signal_log == []


def test_package_update_reports_changed_fields(package, tenant_admin, signal_log):
    package = services.package_update(
        package=package,
        data={"price": Decimal("60"), "is_active": False, "name": package.name},
        by=tenant_admin,
    )
    assert package.price == Decimal("60") and not package.is_active
    assert signal_log == [
        (
            "package_updated",
            {"package": package, "changed": ["price", "is_active"], "by": tenant_admin},
        )
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "WEEKLY"}, "name"),
        ({"price": "-5"}, "price"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"currency": "USD"}, None),
    ],
)
def test_package_update_rejects_bad_input(tenant, package, tenant_admin, signal_log, data, field):
    PackageFactory(tenant=tenant, name="Weekly")
    with pytest.raises(ValidationError) as err:
        services.package_update(package=package, data=data, by=tenant_admin)
    if field:
        assert field in err.value.message_dict
    package.refresh_from_db()
    assert package.price == Decimal("50.00") and package.currency == "KES"
    assert signal_log == []


# --- hotspot users ------------------------------------------------------------------------


def test_staff_creates_a_hotspot_user_valid_for_the_package(tenant, package, staff, signal_log):
    start = timezone.now()
    hotspot_user = services.hotspot_user_create(
        tenant=tenant, package=package, phone="+254712345678", starts_at=start, by=staff
    )
    assert hotspot_user.username.startswith("hs-") and len(hotspot_user.password) == 8
    assert hotspot_user.expires_at == start + timedelta(minutes=60)
    assert hotspot_user.status == HotspotUser.Status.ACTIVE
    assert hotspot_user.phone == "254712345678" and hotspot_user.masked_phone == "2547****678"
    assert signal_log == [("hotspot_user_created", {"hotspot_user": hotspot_user, "by": staff})]


def test_hotspot_user_create_refusals(
    tenant, other_tenant, package, staff, other_admin, signal_log
):
    HotspotUserFactory(package=package, username="taken")
    foreign = PackageFactory(tenant=other_tenant)
    off_sale = PackageFactory(tenant=tenant, is_active=False)
    cases = [
        ({"package": foreign}, ValidationError),
        ({"package": off_sale}, ValidationError),
        ({"username": "taken"}, ValidationError),
        ({"phone": "abc"}, ValidationError),
        ({"by": other_admin}, PermissionDenied),
    ]
    for kwargs, error in cases:
        arguments = {"tenant": tenant, "package": package, "by": staff, **kwargs}
        with pytest.raises(error):
            services.hotspot_user_create(**arguments)
    assert HotspotUser.objects.count() == 1
    assert signal_log == []


@pytest.mark.parametrize("status", [Tenant.Status.PENDING, Tenant.Status.SUSPENDED])
def test_inactive_tenants_cannot_create_hotspot_users(system_admin, status):
    tenant = TenantFactory(status=status, suspension_reason="x")
    package = PackageFactory(tenant=tenant)
    with pytest.raises(InvalidTransition):
        services.hotspot_user_create(tenant=tenant, package=package, by=system_admin)
    assert not HotspotUser.objects.exists()


def test_admin_disables_a_hotspot_user(tenant_admin, package, signal_log):
    hotspot_user = HotspotUserFactory(package=package)
    hotspot_user = services.hotspot_user_disable(hotspot_user=hotspot_user, by=tenant_admin)
    assert hotspot_user.status == HotspotUser.Status.DISABLED
    assert signal_log == [
        ("hotspot_user_disabled", {"hotspot_user": hotspot_user, "by": tenant_admin})
    ]
    with pytest.raises(InvalidTransition, match="already disabled"):
        services.hotspot_user_disable(hotspot_user=hotspot_user, by=tenant_admin)
    assert len(signal_log) == 1


@pytest.mark.parametrize("who", ["staff", "other_admin"])
def test_disable_refused_for_staff_and_other_tenants(request, package, who):
    hotspot_user = HotspotUserFactory(package=package)
    with pytest.raises(PermissionDenied):
        services.hotspot_user_disable(hotspot_user=hotspot_user, by=request.getfixturevalue(who))
    hotspot_user.refresh_from_db()
    assert hotspot_user.status == HotspotUser.Status.ACTIVE


# --- expiry -------------------------------------------------------------------------------


def test_expiry_is_due_only_after_the_end_and_idempotent(package, signal_log):
    now = timezone.now()
    ended = HotspotUserFactory(
        package=package, starts_at=now - timedelta(hours=2), expires_at=now - timedelta(hours=1)
    )
    running = HotspotUserFactory(package=package, starts_at=now)
    disabled = HotspotUserFactory(
        package=package,
        starts_at=now - timedelta(hours=2),
        expires_at=now - timedelta(hours=1),
        status=HotspotUser.Status.DISABLED,
    )
    assert services.expire_due_hotspot_users(now=now) == 1
    assert services.expire_due_hotspot_users(now=now) == 0
    assert services.hotspot_user_expire(hotspot_user=ended, now=now) is False
    statuses = dict(HotspotUser.objects.values_list("pk", "status"))
    assert statuses == {ended.pk: "expired", running.pk: "active", disabled.pk: "disabled"}
    assert signal_log == [
        ("hotspot_user_expired", {"hotspot_user": HotspotUser.objects.get(pk=ended.pk), "by": None})
    ]


def test_expiry_at_the_exact_end(package):
    hotspot_user = HotspotUserFactory(package=package)
    assert not services.hotspot_user_expire(
        hotspot_user=hotspot_user, now=hotspot_user.expires_at - timedelta(microseconds=1)
    )
    assert services.hotspot_user_expire(hotspot_user=hotspot_user, now=hotspot_user.expires_at)


def test_expiry_of_many_users_expires_each_once(package):
    past = timezone.now() - timedelta(days=1)
    HotspotUserFactory.create_batch(
        30, package=package, starts_at=past, expires_at=past + timedelta(minutes=5)
    )
    assert services.expire_due_hotspot_users() == 30
    assert HotspotUser.objects.filter(status="expired").count() == 30
    assert services.expire_due_hotspot_users() == 0
