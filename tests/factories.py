"""factory_boy factories for every model; rows are built directly (tests of services call them)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import User
from hotspot.models import HotspotSession, HotspotUser, Package, Router
from payments.models import Payment
from tenants.models import Tenant

DEFAULT_PASSWORD = "Correct-Horse-42"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    contact_email = factory.LazyAttribute(lambda o: f"ops@{o.slug}.example")
    contact_phone = "254700000001"
    status = Tenant.Status.ACTIVE
    approved_at = factory.LazyFunction(timezone.now)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = "Jane"
    last_name = factory.Sequence(lambda n: f"Doe{n}")
    role = User.Role.STAFF
    tenant = factory.SubFactory(TenantFactory)
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class SystemAdminFactory(UserFactory):
    role = User.Role.SYSTEM_ADMIN
    tenant = None
    is_staff = True
    is_superuser = True


class TenantAdminFactory(UserFactory):
    role = User.Role.TENANT_ADMIN


class TenantStaffFactory(UserFactory):
    role = User.Role.STAFF


class PackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Package

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Package {n}")
    price = Decimal("50.00")
    currency = factory.SelfAttribute("tenant.currency")
    duration_minutes = 60
    data_limit_mb = 1024
    speed_limit = "5M/2M"


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    package = factory.SubFactory(PackageFactory)
    tenant = factory.SelfAttribute("package.tenant")
    phone = "254712345678"
    amount = factory.SelfAttribute("package.price")
    currency = factory.SelfAttribute("package.currency")
    provider_reference = factory.Sequence(lambda n: f"REF{n:08d}")


class HotspotUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HotspotUser

    package = factory.SubFactory(PackageFactory)
    tenant = factory.SelfAttribute("package.tenant")
    username = factory.Sequence(lambda n: f"hs-{n:06d}")
    password = "secret12"
    phone = "254712345678"
    starts_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(minutes=60))


class RouterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Router

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Router {n}")
    address = factory.Sequence(lambda n: f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256 + 1}")
    secret = factory.Sequence(lambda n: f"secret-{n}")


class HotspotSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HotspotSession

    router = factory.SubFactory(RouterFactory)
    tenant = factory.SelfAttribute("router.tenant")
    username = factory.Sequence(lambda n: f"hs-{n:06d}")
    acct_session_id = factory.Sequence(lambda n: f"8{n:07X}")
    mac = "AA-BB-CC-DD-EE-FF"
    ip = "10.5.50.10"
    started_at = factory.LazyFunction(timezone.now)
    last_heard = factory.LazyFunction(timezone.now)
