"""Tenant life cycle through the services: every transition, every refusal, and its signal."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import User
from config.errors import InvalidTransition, PermissionDenied
from tenants import services, signals
from tenants.models import Tenant
from tests.factories import TenantFactory


@pytest.fixture
def received():
    """Collect (signal name, kwargs) for every tenants signal sent during the test."""
    log = []
    handlers = {}
    for name in (
        "tenant_registered",
        "tenant_created",
        "tenant_updated",
        "tenant_approved",
        "tenant_suspended",
        "tenant_reactivated",
    ):

        def handler(sender, _name=name, **kwargs):
            log.append((_name, kwargs))

        handlers[name] = handler
        getattr(signals, name).connect(handler)
    yield log
    for name, handler in handlers.items():
        getattr(signals, name).disconnect(handler)


def test_register_creates_pending_tenant_and_its_admin(db, received):
    tenant = services.tenant_register(
        name="Gamma Spots",
        contact_email="ops@gamma.example",
        contact_phone="+254 700 111222",
        admin_username="gamma-admin",
        admin_password="Sup3r-Secret-pw",
    )
    assert tenant.status == Tenant.Status.PENDING
    assert tenant.slug == "gamma-spots"
    assert tenant.contact_phone == "254700111222"
    admin = User.objects.get(username="gamma-admin")
    assert admin.role == User.Role.TENANT_ADMIN and admin.tenant == tenant
    assert admin.check_password("Sup3r-Secret-pw")
    assert [name for name, _ in received] == ["tenant_registered"]
    assert received[0][1]["admin_user"] == admin


def test_register_rejects_taken_slug_and_weak_password_changing_nothing(db):
    TenantFactory(slug="acme")
    with pytest.raises(ValidationError) as err:
        services.tenant_register(
            name="Acme",
            contact_email="a@b.example",
            admin_username="x",
            admin_password="Sup3r-Secret-pw",
        )
    assert "slug" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        services.tenant_register(
            name="Delta",
            contact_email="a@b.example",
            admin_username="delta-admin",
            admin_password="123",
        )
    assert "password" in err.value.message_dict
    assert not Tenant.objects.filter(slug="delta").exists()
    assert not User.objects.filter(username="delta-admin").exists()


def test_approve_suspend_reactivate(system_admin, received):
    tenant = TenantFactory(status=Tenant.Status.PENDING, approved_at=None)
    tenant = services.tenant_approve(tenant=tenant, by=system_admin)
    assert tenant.status == Tenant.Status.ACTIVE and tenant.approved_by == system_admin
    tenant = services.tenant_suspend(tenant=tenant, reason="Unpaid invoice", by=system_admin)
    assert tenant.status == Tenant.Status.SUSPENDED and tenant.suspension_reason == "Unpaid invoice"
    tenant = services.tenant_reactivate(tenant=tenant, by=system_admin)
    assert tenant.status == Tenant.Status.ACTIVE and tenant.suspension_reason == ""
    assert [n for n, _ in received] == ["tenant_approved", "tenant_suspended", "tenant_reactivated"]


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (Tenant.Status.ACTIVE, "approve"),
        (Tenant.Status.SUSPENDED, "approve"),
        (Tenant.Status.PENDING, "suspend"),
        (Tenant.Status.SUSPENDED, "suspend"),
        (Tenant.Status.PENDING, "reactivate"),
        (Tenant.Status.ACTIVE, "reactivate"),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(system_admin, received, status, action):
    tenant = TenantFactory(status=status, suspension_reason="x" if status == "suspended" else "")
    call = {
        "approve": lambda: services.tenant_approve(tenant=tenant, by=system_admin),
        "suspend": lambda: services.tenant_suspend(tenant=tenant, reason="why", by=system_admin),
        "reactivate": lambda: services.tenant_reactivate(tenant=tenant, by=system_admin),
    }[action]
    with pytest.raises(InvalidTransition):
        call()
    tenant.refresh_from_db()
    assert tenant.status == status
    assert received == []


def test_suspend_needs_a_reason(system_admin, tenant):
    with pytest.raises(ValidationError):
        services.tenant_suspend(tenant=tenant, reason="   ", by=system_admin)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_only_system_admins_change_status(tenant_admin, tenant):
    with pytest.raises(PermissionDenied):
        services.tenant_suspend(tenant=tenant, reason="no", by=tenant_admin)


def test_update_records_changed_fields(tenant_admin, tenant, received):
    tenant = services.tenant_update(
        tenant=tenant,
        data={"name": "Acme Wireless", "contact_email": tenant.contact_email},
        by=tenant_admin,
    )
    assert tenant.name == "Acme Wireless"
    assert received == [
        (
            "tenant_updated",
            {
                "tenant": tenant,
                "changed": ["name"],
                "by": tenant_admin,
                "signal": signals.tenant_updated,
            },
        )
    ]


def test_tenant_admin_cannot_update_another_tenant(other_admin, tenant):
    with pytest.raises(PermissionDenied):
        services.tenant_update(tenant=tenant, data={"name": "Hijacked"}, by=other_admin)
    tenant.refresh_from_db()
    assert tenant.name == "Acme WiFi"


def test_system_admin_creates_an_active_or_pending_tenant(system_admin, received):
    active = services.tenant_create(
        name="Delta Net", contact_email="ops@delta.example", by=system_admin
    )
    assert active.status == Tenant.Status.ACTIVE and active.slug == "delta-net"
    assert active.approved_by == system_admin and active.approved_at is not None
    pending = services.tenant_create(
        name="Echo", contact_email="ops@echo.example", status="pending", by=system_admin
    )
    assert pending.status == Tenant.Status.PENDING and pending.approved_at is None
    assert [n for n, _ in received] == ["tenant_created", "tenant_created"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"status": "suspended"}, ValidationError),
        ({"contact_email": "not-an-email"}, ValidationError),
        ({"name": "  "}, ValidationError),
        ({"contact_phone": "phone"}, ValidationError),
        ({"slug": "acme"}, ValidationError),
    ],
)
def test_create_rejects_bad_input(system_admin, tenant, received, kwargs, error):
    arguments = {"name": "Delta", "contact_email": "ops@delta.example", "by": system_admin}
    with pytest.raises(error):
        services.tenant_create(**{**arguments, **kwargs})
    assert Tenant.objects.count() == 1 and received == []


def test_tenant_users_cannot_create_tenants(tenant_admin, received):
    with pytest.raises(PermissionDenied):
        services.tenant_create(name="Mine", contact_email="a@b.example", by=tenant_admin)
    assert received == []


def test_update_rejects_unknown_fields_and_bad_values(system_admin, tenant, received):
    for data in ({"status": "active"}, {"contact_email": "nope"}, {"name": "   "}):
        with pytest.raises(ValidationError):
            services.tenant_update(tenant=tenant, data=data, by=system_admin)
    tenant.refresh_from_db()
    assert tenant.name == "Acme WiFi" and received == []


def test_approve_and_reactivate_need_a_system_admin(tenant_admin, tenant):
    pending = TenantFactory(status=Tenant.Status.PENDING, approved_at=None)
    with pytest.raises(PermissionDenied):
        services.tenant_approve(tenant=pending, by=tenant_admin)
    Tenant.objects.filter(pk=tenant.pk).update(status="suspended", suspension_reason="x")
    with pytest.raises(PermissionDenied):
        services.tenant_reactivate(tenant=tenant, by=tenant_admin)
    assert Tenant.objects.get(pk=pending.pk).status == "pending"
    assert Tenant.objects.get(pk=tenant.pk).status == "suspended"
