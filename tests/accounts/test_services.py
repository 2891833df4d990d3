"""Account life cycle through the services: every transition, every refusal, and its signal."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import services
from accounts.models import User
from config.errors import InvalidTransition, PermissionDenied
from tenants.models import Tenant
from tests.factories import (
    DEFAULT_PASSWORD,
    SystemAdminFactory,
    TenantAdminFactory,
    TenantFactory,
    TenantStaffFactory,
)

NEW_PASSWORD = "Brand-New-Pass-77"


def names(log):
    return [name for name, _ in log]


# --- create -------------------------------------------------------------------------------


def test_tenant_admin_creates_staff_in_own_tenant(tenant_admin, tenant, signal_log):
    user = services.user_create(
        username="acme-cashier",
        password=NEW_PASSWORD,
        role=User.Role.STAFF,
        tenant=tenant,
        email="cashier@acme.example",
        phone="+254 712 345 678",
        by=tenant_admin,
    )
    assert user.tenant == tenant and user.role == User.Role.STAFF
    assert user.check_password(NEW_PASSWORD)
    assert user.phone == "254712345678"
    assert not user.is_staff and not user.is_superuser  # no Django admin for tenant users
    assert signal_log == [("user_created", {"user": user, "by": tenant_admin})]


def test_system_admin_creates_system_admin_with_admin_access(system_admin):
    user = services.user_create(
        username="ops2", password=NEW_PASSWORD, role=User.Role.SYSTEM_ADMIN, by=system_admin
    )
    assert user.tenant is None and user.is_staff and user.is_superuser


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"role": "owner"}, "role"),
        ({"role": User.Role.STAFF, "tenant": None}, "tenant"),
        ({"role": User.Role.SYSTEM_ADMIN}, "tenant"),  # with the tenant below: refused
        ({"username": "  "}, "username"),
        ({"username": "ACME-ADMIN"}, "username"),  # taken, case-insensitively
        ({"password": "12345678"}, "password"),
        ({"password": "acme-cashier"}, "password"),  # too similar to the username
        ({"phone": "call me"}, "phone"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_create_rejects_bad_input_and_creates_nothing(
    system_admin, tenant_admin, tenant, signal_log, kwargs, field
):
    arguments = {
        "username": "acme-cashier",
        "password": NEW_PASSWORD,
        "role": User.Role.STAFF,
        "tenant": tenant,
        "by": system_admin,
        **kwargs,
    }
    before = User.objects.count()
    with pytest.raises(ValidationError) as err:
        services.user_create(**arguments)
    assert field in err.value.message_dict
    assert User.objects.count() == before
    assert signal_log == []


def test_create_permission_rules(tenant, other_tenant, tenant_admin, staff, signal_log):
    # A tenant admin cannot add users to another tenant, nor create system admins.
    with pytest.raises(PermissionDenied):
        services.user_create(
            username="spy",
            password=NEW_PASSWORD,
            role="staff",
            tenant=other_tenant,
            by=tenant_admin,
        )
    with pytest.raises(PermissionDenied):
        services.user_create(
            username="boss", password=NEW_PASSWORD, role="system_admin", by=tenant_admin
        )
    # Staff cannot create users at all.
    with pytest.raises(PermissionDenied):
        services.user_create(
            username="friend", password=NEW_PASSWORD, role="staff", tenant=tenant, by=staff
        )
    assert not User.objects.filter(username__in=["spy", "boss", "friend"]).exists()
    assert signal_log == []


# --- update -------------------------------------------------------------------------------


def test_user_updates_own_profile_and_only_changed_fields_are_reported(staff, signal_log):
    user = services.user_update(
        user=staff,
        data={"first_name": "Wanjiru", "last_name": staff.last_name, "phone": "0712 345678"},
        by=staff,
    )
    assert user.first_name == "Wanjiru" and user.phone == "0712345678"
    assert signal_log == [
        ("user_updated", {"user": user, "changed": ["first_name", "phone"], "by": staff})
    ]
    services.user_update(user=user, data={"first_name": "Wanjiru"}, by=staff)
    assert len(signal_log) == 1  # nothing changed, nothing sent


def test_tenant_admin_changes_a_staff_role(tenant_admin, staff):
    user = services.user_update(user=staff, data={"role": User.Role.TENANT_ADMIN}, by=tenant_admin)
    assert User.objects.get(pk=user.pk).role == User.Role.TENANT_ADMIN


@pytest.mark.parametrize(
    ("who", "target", "data", "error"),
    [
        ("staff", "tenant_admin", {"first_name": "X"}, PermissionDenied),
        ("other_admin", "staff", {"first_name": "X"}, PermissionDenied),
        ("staff", "staff", {"role": "tenant_admin"}, PermissionDenied),
        ("tenant_admin", "tenant_admin", {"role": "staff"}, ValidationError),
        ("tenant_admin", "staff", {"role": "system_admin"}, ValidationError),
        ("tenant_admin", "staff", {"role": "owner"}, ValidationError),
        ("system_admin", "system_admin", {"role": "staff"}, ValidationError),
        ("tenant_admin", "staff", {"username": "renamed"}, ValidationError),
        ("tenant_admin", "staff", {"email": "nope"}, ValidationError),
        ("tenant_admin", "staff", {"phone": "12"}, ValidationError),
        ("tenant_admin", "system_admin", {"first_name": "X"}, PermissionDenied),
    ],
)
def test_update_refusals_change_nothing(request, signal_log, who, target, data, error):
    by = request.getfixturevalue(who)
    user = request.getfixturevalue(target)
    before = User.objects.filter(pk=user.pk).values().get()
    with pytest.raises(error):
        services.user_update(user=user, data=data, by=by)
    assert User.objects.filter(pk=user.pk).values().get() == before
    assert signal_log == []


# --- delete -------------------------------------------------------------------------------


def test_tenant_admin_deletes_staff(tenant_admin, staff, signal_log):
    staff_id = staff.pk
    services.user_delete(user=staff, by=tenant_admin)
    assert not User.objects.filter(pk=staff_id).exists()
    assert signal_log == [
        (
            "user_deleted",
            {
                "user_id": staff_id,
                "username": "acme-staff",
                "full_name": staff.display_name,
                "tenant_id": staff.tenant_id,
                "role": "staff",
                "by": tenant_admin,
            },
        )
    ]


@pytest.mark.parametrize(
    ("who", "target", "error"),
    [
        ("tenant_admin", "tenant_admin", InvalidTransition),
        ("staff", "tenant_admin", PermissionDenied),
        ("other_admin", "staff", PermissionDenied),
        ("tenant_admin", "system_admin", PermissionDenied),
    ],
)
def test_delete_refusals(request, signal_log, who, target, error):
    by = request.getfixturevalue(who)
    user = request.getfixturevalue(target)
    with pytest.raises(error):
        services.user_delete(user=user, by=by)
    assert User.objects.filter(pk=user.pk).exists()
    assert signal_log == []


# --- change password ----------------------------------------------------------------------


def test_user_changes_own_password(staff, signal_log):
    services.user_change_password(user=staff, new_password=NEW_PASSWORD, by=staff)
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)
    assert signal_log == [("password_changed", {"user": staff, "by": staff})]


def test_tenant_admin_resets_staff_password(tenant_admin, staff):
    services.user_change_password(user=staff, new_password=NEW_PASSWORD, by=tenant_admin)
    assert User.objects.get(pk=staff.pk).check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    ("who", "password", "error"),
    [
        ("other_admin", NEW_PASSWORD, PermissionDenied),
        ("tenant_admin", "short", ValidationError),
        ("tenant_admin", "password123", ValidationError),
    ],
)
def test_password_change_refusals_keep_the_old_password(
    request, staff, signal_log, who, password, error
):
    with pytest.raises(error) as err:
        services.user_change_password(
            user=staff, new_password=password, by=request.getfixturevalue(who)
        )
    if error is ValidationError:
        assert "new_password" in err.value.message_dict
    assert User.objects.get(pk=staff.pk).check_password(DEFAULT_PASSWORD)
    assert signal_log == []


def test_staff_cannot_change_a_colleagues_password(tenant):
    first = TenantStaffFactory(tenant=tenant)
    second = TenantStaffFactory(tenant=tenant)
    with pytest.raises(PermissionDenied):
        services.user_change_password(user=second, new_password=NEW_PASSWORD, by=first)


# --- suspend / activate -------------------------------------------------------------------


def test_suspend_and_activate(tenant_admin, staff, signal_log):
    user = services.user_suspend(user=staff, reason="  Lost their phone  ", by=tenant_admin)
    assert user.status == User.Status.SUSPENDED and user.is_suspended
    assert user.suspension_reason == "Lost their phone" and user.suspended_until is None
    user = services.user_activate(user=user, by=tenant_admin)
    assert user.status == User.Status.ACTIVE and user.suspension_reason == ""
    assert signal_log == [
        (
            "account_suspended",
            {
                "user": user,
                "reason": "Lost their phone",
                "until": None,
                "lockout": False,
                "by": tenant_admin,
            },
        ),
        ("account_activated", {"user": user, "by": tenant_admin}),
    ]


@pytest.mark.parametrize(
    ("who", "target", "reason", "error"),
    [
        ("tenant_admin", "staff", "   ", ValidationError),
        ("tenant_admin", "tenant_admin", "me", InvalidTransition),
        ("staff", "tenant_admin", "coup", PermissionDenied),
        ("other_admin", "staff", "spite", PermissionDenied),
        ("tenant_admin", "system_admin", "coup", PermissionDenied),
    ],
)
def test_suspend_refusals(request, signal_log, who, target, reason, error):
    user = request.getfixturevalue(target)
    with pytest.raises(error):
        services.user_suspend(user=user, reason=reason, by=request.getfixturevalue(who))
    user.refresh_from_db()
    assert user.status == User.Status.ACTIVE
    assert signal_log == []


def test_suspending_a_suspended_user_is_refused(tenant_admin, staff, signal_log):
    services.user_suspend(user=staff, reason="first", by=tenant_admin)
    with pytest.raises(InvalidTransition, match="already suspended"):
        services.user_suspend(user=staff, reason="second", by=tenant_admin)
    assert User.objects.get(pk=staff.pk).suspension_reason == "first"
    assert [name for name, _ in signal_log] == ["account_suspended"]


def test_activating_an_active_user_is_refused(tenant_admin, staff, signal_log):
    with pytest.raises(InvalidTransition, match="not suspended"):
        services.user_activate(user=staff, by=tenant_admin)
    assert signal_log == []


def test_other_tenants_admin_cannot_activate(tenant_admin, other_admin, staff):
    services.user_suspend(user=staff, reason="why", by=tenant_admin)
    with pytest.raises(PermissionDenied):
        services.user_activate(user=staff, by=other_admin)
    assert User.objects.get(pk=staff.pk).is_suspended


# --- who may sign in ----------------------------------------------------------------------


def test_login_block_reason_for_each_kind_of_user(db):
    acme = TenantFactory(slug="acme")
    assert services.login_block_reason(TenantAdminFactory(tenant=acme)) is None
    assert services.login_block_reason(SystemAdminFactory()) is None

    suspended = TenantStaffFactory(tenant=acme, status=User.Status.SUSPENDED, suspension_reason="x")
    assert "has been suspended" in services.login_block_reason(suspended)

    locked = TenantStaffFactory(
        tenant=acme,
        status=User.Status.SUSPENDED,
        suspension_reason="lockout",
        suspended_until=timezone.now() + timedelta(minutes=10),
    )
    assert "temporarily locked" in services.login_block_reason(locked)

    ran_out = TenantStaffFactory(
        tenant=acme,
        status=User.Status.SUSPENDED,
        suspension_reason="lockout",
        suspended_until=timezone.now() - timedelta(seconds=1),
    )
    assert services.login_block_reason(ran_out) is None

    pending = TenantFactory(slug="gamma", status=Tenant.Status.PENDING, approved_at=None)
    assert "awaiting approval" in services.login_block_reason(TenantAdminFactory(tenant=pending))

    closed = TenantFactory(
        slug="closed", status=Tenant.Status.SUSPENDED, suspension_reason="Unpaid"
    )
    assert "organisation's account is suspended" in services.login_block_reason(
        TenantStaffFactory(tenant=closed)
    )

    suspended_admin = SystemAdminFactory(status=User.Status.SUSPENDED, suspension_reason="x")
    assert "has been suspended" in services.login_block_reason(suspended_admin)
