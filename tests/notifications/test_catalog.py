"""The catalog: every name, every builder's payload (JSON, no secrets), audiences, the docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from accounts.models import User
from notifications.events import catalog, docs
from payments.models import SmsMessage, Voucher, VoucherBatch
from payments.vouchers import voucher_batch_create
from tests.factories import (
    HotspotSessionFactory,
    HotspotUserFactory,
    PaymentFactory,
    RouterFactory,
    TenantFactory,
    UserFactory,
)

ISSUE_NAMES = {
    "TenantCreated",
    "TenantUpdated",
    "TenantApproved",
    "TenantSuspended",
    "TenantReactivated",
    "UserCreated",
    "UserUpdated",
    "UserDeleted",
    "PasswordChanged",
    "AccountSuspended",
    "AccountActivated",
    "PaymentCompleted",
    "PaymentFailed",
    "HotspotUserCreated",
    "HotspotUserExpired",
    "SystemNotification",
    "SystemAlert",
    "TenantRegistered",
}


def test_catalog_has_the_issue_names_in_one_naming_style():
    assert set(catalog.CATALOG) >= ISSUE_NAMES
    for name, event_type in catalog.CATALOG.items():
        assert name == event_type.name and name[0].isupper() and name.isalnum()
        assert event_type.level in catalog.LEVELS
        assert event_type.category in catalog.CATEGORIES
        assert event_type.title and event_type.template and event_type.audience


def test_unknown_names_and_levels_are_refused():
    with pytest.raises(KeyError, match="Unknown event 'UserCreatd'"):
        catalog.get("UserCreatd")
    with pytest.raises(ValueError, match="Unknown level"):
        catalog.SystemAlert.create(message="x", level="fatal")


@pytest.fixture
def objects(tenant, tenant_admin, package):
    """One object of every model an event is built from, with secrets set."""
    user = UserFactory(tenant=tenant, phone="254712345678", first_name="John", last_name="Doe")
    payment = PaymentFactory(package=package, phone="254712345678", raw_callback={"k": "v"})
    hotspot_user = HotspotUserFactory(package=package, password="router-pass-xyz", payment=payment)
    router = RouterFactory(tenant=tenant, secret="router-secret-xyz")
    session = HotspotSessionFactory(router=router, hotspot_user=hotspot_user)
    batch = voucher_batch_create(tenant=tenant, package=package, count=1, by=None)
    voucher = batch.vouchers.get()
    Voucher.objects.filter(pk=voucher.pk).update(hotspot_user=hotspot_user, status="used")
    voucher.refresh_from_db()
    sms = SmsMessage.objects.create(
        tenant=tenant, phone="254712345678", body="secret login", payment=payment, last_error="x"
    )
    return {
        catalog.Router: router,
        catalog.HotspotSession: session,
        SmsMessage: sms,
        Voucher: voucher,
        VoucherBatch: batch,
        catalog.Tenant: tenant,
        User: user,
        catalog.Payment: payment,
        catalog.HotspotUser: hotspot_user,
        catalog.Package: package,
    }


def _events(objects):
    for event_type in catalog.CATALOG.values():
        if event_type.model is None:
            yield event_type.create(message="Maintenance at 22:00")
        else:
            yield event_type.from_object(objects[event_type.model])


def test_every_payload_is_plain_json_matching_its_declared_fields(objects):
    for event in _events(objects):
        event_type = catalog.get(event.name)
        assert set(event.data) == set(event_type.fields), event.name
        assert json.loads(json.dumps(event.data)) == event.data, event.name
        assert event.targets, event.name


def test_no_payload_carries_secrets_or_raw_phones(objects):
    user = objects[User]
    secrets = [
        user.password,  # the hash
        objects[catalog.Tenant].payment_secret,
        objects[catalog.HotspotUser].password,
        objects[catalog.Router].secret,
        "254712345678",
        settings.SECRET_KEY,
    ]
    for event in _events(objects):
        text = json.dumps([event.data, event.message, event.title])
        for secret in secrets:
            assert secret not in text, event.name


def _targets(event):
    return {t.group: t.roles for t in event.targets}


def test_audiences(objects, system_admin):
    tenant = objects[catalog.Tenant]
    user = objects[User]
    t, u = f"tenant.{tenant.pk}", f"user.{user.pk}"
    admins = ("tenant_admin",)
    assert _targets(catalog.TenantRegistered.from_tenant(tenant)) == {"system.admin": None}
    assert _targets(catalog.TenantCreated.from_tenant(tenant)) == {"system.admin": None}
    assert _targets(catalog.TenantSuspended.from_tenant(tenant, reason="x")) == {
        t: None,
        "system.admin": None,
    }
    assert _targets(catalog.TenantUpdated.from_tenant(tenant)) == {t: admins, "system.admin": None}
    assert _targets(catalog.PasswordChanged.from_user(user)) == {u: None}
    assert _targets(catalog.AccountSuspended.from_user(user, reason="x")) == {u: None, t: admins}
    assert _targets(catalog.UserCreated.from_user(user)) == {t: admins}
    assert _targets(catalog.UserCreated.from_user(system_admin)) == {"system.admin": None}
    assert _targets(catalog.PaymentCompleted.from_payment(objects[catalog.Payment])) == {t: None}
    assert _targets(catalog.PaymentFailed.from_payment(objects[catalog.Payment])) == {t: None}


def test_system_events_go_to_system_admins_unless_addressed(objects):
    tenant, user = objects[catalog.Tenant], objects[User]
    for event_type in (catalog.SystemNotification, catalog.SystemAlert):
        assert _targets(event_type.create()) == {"system.admin": None}
        assert _targets(event_type.create(tenant=tenant)) == {f"tenant.{tenant.pk}": None}
        assert _targets(event_type.create(user=user)) == {f"user.{user.pk}": None}
        assert _targets(event_type.create(tenant=tenant, user=user)) == {
            f"tenant.{tenant.pk}": None,
            f"user.{user.pk}": None,
        }


def test_hand_written_events_take_only_their_own_addressing(objects):
    """One `create` for the system events and the announcement; each refuses the other's."""
    tenant, user = objects[catalog.Tenant], objects[User]
    event = catalog.PlatformAnnouncement.create(message="maintenance", by=user)
    assert event.data == {"by_user_id": user.pk} and event.message == "maintenance"
    with pytest.raises(ValueError, match="every tenant"):
        catalog.PlatformAnnouncement.create(message="x", tenant=tenant)
    with pytest.raises(ValueError, match="no by"):
        catalog.SystemNotification.create(message="x", by=user)


def test_user_strings_are_not_format_fields(db):
    """A tenant called "{tenant_id}" is shown literally, never interpreted."""
    tenant = TenantFactory(name="{tenant_id} <b>x</b>", slug="weird")
    event = catalog.TenantCreated.from_tenant(tenant)
    assert event.message == "{tenant_id} <b>x</b> has been created."


def test_docs_events_md_is_generated_from_the_catalog():
    path = Path(settings.BASE_DIR) / "docs" / "events.md"
    assert path.read_text() == docs.markdown(), (
        "docs/events.md is stale: python manage.py list_events --format markdown > docs/events.md"
    )
    for name in catalog.CATALOG:
        assert f"## {name}" in path.read_text()


def test_list_events_prints_the_catalog(capsys):
    call_command("list_events")
    out = capsys.readouterr().out
    for event_type in catalog.CATALOG.values():
        assert event_type.name in out and event_type.template in out
    call_command("list_events", "--format", "json")
    listed = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in listed] == list(catalog.CATALOG)
    assert listed[0].keys() >= {"name", "category", "level", "title", "message", "audience"}
    call_command("list_events", "--format", "markdown")
    assert capsys.readouterr().out == docs.markdown()
