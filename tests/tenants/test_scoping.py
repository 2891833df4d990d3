"""`for_user` on every tenant-owned model: a tenant's users see only their tenant's rows."""

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import User
from hotspot.models import HotspotUser, Package
from payments.models import Payment
from tenants.models import Tenant
from tests.factories import HotspotUserFactory, PackageFactory, PaymentFactory, TenantStaffFactory


@pytest.fixture
def two_tenants(tenant, other_tenant, system_admin, tenant_admin, staff, other_admin):
    """Each tenant with a package, a hotspot user and a payment of its own."""
    rows = {}
    for t in (tenant, other_tenant):
        package = PackageFactory(tenant=t)
        rows[t.slug] = {
            "tenant": t,
            "package": package,
            "hotspot_user": HotspotUserFactory(package=package),
            "payment": PaymentFactory(package=package),
        }
    return rows


MODELS = {
    "tenant": Tenant,
    "package": Package,
    "hotspot_user": HotspotUser,
    "payment": Payment,
}


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("who", ["tenant_admin", "staff"])
def test_tenant_users_see_only_their_tenant(request, two_tenants, kind, who):
    user = request.getfixturevalue(who)
    visible = list(MODELS[kind].objects.for_user(user))
    assert visible == [two_tenants["acme"][kind]]


@pytest.mark.parametrize("kind", MODELS)
def test_other_tenant_sees_only_its_own(other_admin, two_tenants, kind):
    assert list(MODELS[kind].objects.for_user(other_admin)) == [two_tenants["beta"][kind]]


@pytest.mark.parametrize("kind", MODELS)
def test_system_admins_see_every_tenant(system_admin, two_tenants, kind):
    assert set(MODELS[kind].objects.for_user(system_admin)) == {
        two_tenants["acme"][kind],
        two_tenants["beta"][kind],
    }


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("who", [None, "anonymous"])
def test_nobody_signed_in_sees_nothing(two_tenants, kind, who):
    user = AnonymousUser() if who else None
    assert not MODELS[kind].objects.for_user(user).exists()


def test_users_are_scoped_too(system_admin, tenant_admin, staff, other_admin):
    colleague = TenantStaffFactory(tenant=staff.tenant)
    assert set(User.objects.for_user(tenant_admin)) == {tenant_admin, staff, colleague}
    assert set(User.objects.for_user(other_admin)) == {other_admin}
    assert set(User.objects.for_user(system_admin)) == {
        system_admin,
        tenant_admin,
        staff,
        colleague,
        other_admin,
    }


def test_a_scoped_queryset_cannot_be_widened_by_filtering(tenant_admin, two_tenants):
    beta_payment = two_tenants["beta"]["payment"]
    scoped = Payment.objects.for_user(tenant_admin)
    assert not scoped.filter(pk=beta_payment.pk).exists()
    assert not scoped.filter(provider_reference=beta_payment.provider_reference).exists()
