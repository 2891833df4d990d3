"""`manage.py seed_demo`: the demo accounts and data, idempotent, refused in production."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import User
from hotspot.models import HotspotUser, Package
from payments.models import Payment
from tenants.management.commands.seed_demo import DEFAULT_PASSWORD
from tenants.models import Tenant

MODELS = (Tenant, User, Package, HotspotUser, Payment)


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def snapshot():
    """Every demo row's visible state (status, password hash), to prove a rerun changes nothing."""
    return {
        "tenants": list(Tenant.objects.values_list("slug", "status", "updated_at")),
        "users": list(User.objects.values_list("username", "password", "status")),
        "hotspot": list(HotspotUser.objects.values_list("username", "status", "updated_at")),
        "payments": list(Payment.objects.values_list("provider_reference", "status")),
    }


def test_seed_creates_the_documented_demo(db):
    output = seed()
    tenants = dict(Tenant.objects.values_list("slug", "status"))
    assert tenants == {"acme": "active", "beta": "active", "gamma": "pending"}
    assert Tenant.objects.get(slug="acme").name == "Acme WiFi"
    assert Tenant.objects.get(slug="beta").name == "Beta Net"
    roles = {u.username: (u.role, u.tenant.slug if u.tenant else None) for u in User.objects.all()}
    assert roles == {
        "sysadmin": ("system_admin", None),
        "acme-admin": ("tenant_admin", "acme"),
        "acme-staff": ("staff", "acme"),
        "beta-admin": ("tenant_admin", "beta"),
        "gamma-admin": ("tenant_admin", "gamma"),
    }
    assert all(u.check_password(DEFAULT_PASSWORD) for u in User.objects.all())
    for slug in ("acme", "beta"):
        assert Package.objects.filter(tenant__slug=slug).count() >= 2
        assert HotspotUser.objects.filter(tenant__slug=slug).count() >= 2
        statuses = set(Payment.objects.filter(tenant__slug=slug).values_list("status", flat=True))
        assert {"completed", "pending"} <= statuses
    assert Package.objects.filter(tenant__slug="gamma").exists()
    assert not Payment.objects.filter(tenant__slug="gamma").exists()  # pending: sells nothing
    # Completed payments provisioned exactly one hotspot user each.
    for payment in Payment.objects.filter(status="completed"):
        assert HotspotUser.objects.filter(payment=payment).count() == 1
    assert "http://127.0.0.1:8000/" in output and DEFAULT_PASSWORD in output
    for username in ("sysadmin", "acme-admin", "acme-staff", "beta-admin", "gamma-admin"):
        assert username in output


def test_second_run_changes_nothing(db):
    seed()
    before_counts, before = counts(), snapshot()
    output = seed()
    assert counts() == before_counts
    assert snapshot() == before
    assert "nothing created" in output


def test_rerun_with_password_resets_demo_passwords_only(db):
    seed()
    User.objects.create_user(username="someone", password="x", role="staff",
                             tenant=Tenant.objects.get(slug="acme"))  # fmt: skip
    before_counts = counts()
    output = seed("--password", "new-demo-pass-99")
    assert counts() == before_counts
    demo = User.objects.exclude(username="someone")
    assert all(u.check_password("new-demo-pass-99") for u in demo)
    assert User.objects.get(username="someone").check_password("x")
    assert "Password reset for: acme-admin, acme-staff, beta-admin, gamma-admin, sysadmin" in output


def test_first_run_with_password(db):
    seed("--password", "Another-Pass-31")
    assert User.objects.get(username="sysadmin").check_password("Another-Pass-31")


def test_weak_password_is_refused_and_nothing_is_created(db):
    with pytest.raises(CommandError, match="too common|too short"):
        seed("--password", "password")
    assert counts() == dict.fromkeys((m.__name__ for m in MODELS), 0)


def test_sysadmin_signs_in_to_admin(client, db):
    seed()
    assert client.login(username="sysadmin", password=DEFAULT_PASSWORD)
    assert client.get("/admin/").status_code == 200


def test_rerun_after_a_tenant_was_suspended_still_works(db):
    from tenants.services import tenant_suspend

    seed()
    tenant_suspend(tenant=Tenant.objects.get(slug="beta"), reason="demo", by=None)
    HotspotUser.objects.filter(username="beta-guest-1").delete()
    before = counts()
    seed()
    assert counts() == before  # nothing can be sold by a suspended tenant: skipped, no crash
    assert Tenant.objects.get(slug="beta").status == "suspended"


@override_settings(DEMO_DATA_ALLOWED=False)
def test_refuses_under_production_settings(db):
    with pytest.raises(CommandError, match="production"):
        seed()
    assert not User.objects.exists()
