"""Payments: initiation and the provider's callback (complete, fail, repeat, reject)."""

import logging
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from config.errors import InvalidTransition, NotFound, PermissionDenied
from hotspot.models import HotspotUser
from payments import services
from payments.models import Payment
from payments.services import AmountMismatch
from tenants.models import Tenant
from tests.factories import PackageFactory, PaymentFactory, TenantFactory

RAW = {"ResultCode": 0, "MpesaReceiptNumber": "QFX12345"}


def state(payment):
    """What a user would notice about a payment and its hotspot users."""
    payment.refresh_from_db()
    return (
        payment.status,
        payment.failure_reason,
        payment.raw_callback,
        HotspotUser.objects.filter(tenant_id=payment.tenant_id).count(),
    )


# --- initiate -----------------------------------------------------------------------------


def test_initiate_creates_a_pending_payment_at_the_package_price(tenant, package, signal_log):
    payment = services.payment_initiate(tenant=tenant, package=package, phone="+254 712-345-678")
    assert payment.status == Payment.Status.PENDING
    assert payment.amount == Decimal("50.00") and payment.currency == "KES"
    assert payment.phone == "254712345678" and payment.masked_phone == "2547****678"
    assert payment.provider_reference.startswith("PAY")
    assert signal_log == [("payment_initiated", {"payment": payment, "by": None})]


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("bad phone", ValidationError),
        ("foreign package", ValidationError),
        ("package off sale", ValidationError),
        ("free package", ValidationError),
        ("reference taken", ValidationError),
        ("reference too long", ValidationError),
        ("other tenant's user", PermissionDenied),
    ],
)
def test_initiate_refusals_create_nothing(
    tenant, other_tenant, package, other_admin, signal_log, case, error
):
    PaymentFactory(package=package, provider_reference="TAKEN1")
    kwargs = {"tenant": tenant, "package": package, "phone": "254712345678"}
    if case == "bad phone":
        kwargs["phone"] = "07-CALL-ME"
    elif case == "foreign package":
        kwargs["package"] = PackageFactory(tenant=other_tenant)
    elif case == "package off sale":
        kwargs["package"] = PackageFactory(tenant=tenant, is_active=False)
    elif case == "free package":
        kwargs["package"] = PackageFactory(tenant=tenant, price=Decimal("0"))
    elif case == "reference taken":
        kwargs["provider_reference"] = "TAKEN1"
    elif case == "reference too long":
        kwargs["provider_reference"] = "R" * 65
    else:
        kwargs["by"] = other_admin
    with pytest.raises(error):
        services.payment_initiate(**kwargs)
    assert Payment.objects.count() == 1
    assert signal_log == []


@pytest.mark.parametrize("status", [Tenant.Status.PENDING, Tenant.Status.SUSPENDED])
def test_inactive_tenants_cannot_take_payments(db, status):
    tenant = TenantFactory(status=status, suspension_reason="x")
    with pytest.raises(InvalidTransition):
        services.payment_initiate(
            tenant=tenant, package=PackageFactory(tenant=tenant), phone="254712345678"
        )
    assert not Payment.objects.exists()


# --- callback -----------------------------------------------------------------------------


def test_successful_callback_completes_and_provisions_one_hotspot_user(package, signal_log):
    payment = PaymentFactory(package=package, provider_reference="REF1")
    result = services.payment_record_callback(
        provider_reference="REF1", succeeded=True, amount="50.00", raw=RAW
    )
    assert not result.duplicate
    assert result.payment.status == Payment.Status.COMPLETED and result.payment.completed_at
    assert result.payment.raw_callback == RAW
    hotspot_user = result.hotspot_user
    assert hotspot_user.payment == payment and hotspot_user.package == package
    assert hotspot_user.phone == payment.phone and hotspot_user.status == "active"
    assert [name for name, _ in signal_log] == ["hotspot_user_created", "payment_completed"]
    assert signal_log[1][1]["hotspot_user"] == hotspot_user


def test_failed_callback_fails_with_the_reason(package, signal_log):
    PaymentFactory(package=package, provider_reference="REF1")
    result = services.payment_record_callback(
        provider_reference="REF1", succeeded=False, amount=50, raw=RAW, reason="Insufficient funds"
    )
    assert result.payment.status == Payment.Status.FAILED
    assert result.payment.failure_reason == "Insufficient funds" and result.hotspot_user is None
    assert not HotspotUser.objects.exists()
    assert signal_log == [
        ("payment_failed", {"payment": result.payment, "reason": "Insufficient funds", "by": None})
    ]


def test_failed_callback_without_reason_gets_a_default(package):
    PaymentFactory(package=package, provider_reference="REF1")
    result = services.payment_record_callback(
        provider_reference="REF1", succeeded=False, amount=50, raw=RAW
    )
    assert result.payment.failure_reason == "Declined by the provider."


@pytest.mark.parametrize("succeeded", [True, False])
def test_repeated_callback_is_idempotent(package, signal_log, succeeded):
    PaymentFactory(package=package, provider_reference="REF1")
    first = services.payment_record_callback(
        provider_reference="REF1", succeeded=succeeded, amount="50", raw=RAW, reason="No"
    )
    sent = len(signal_log)
    second = services.payment_record_callback(
        provider_reference="REF1", succeeded=succeeded, amount="50", raw={"again": 1}
    )
    assert second.duplicate and second.payment == first.payment
    assert second.payment.status == first.payment.status
    assert second.hotspot_user == first.hotspot_user
    assert HotspotUser.objects.count() == (1 if succeeded else 0)
    assert Payment.objects.get(provider_reference="REF1").raw_callback == RAW
    assert len(signal_log) == sent


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"provider_reference": "NOPE"}, NotFound),
        ({"amount": "49.99"}, AmountMismatch),
        ({"amount": "-50"}, AmountMismatch),
        ({"amount": "fifty"}, ValidationError),
        ({"amount": None}, ValidationError),
        ({"amount": "NaN"}, ValidationError),
        ({"amount": "Infinity"}, ValidationError),
        ({"amount": [50]}, ValidationError),
        ({"provider_reference": ""}, ValidationError),
        ({"provider_reference": None}, ValidationError),
    ],
)
def test_rejected_callbacks_are_logged_and_change_nothing(
    package, signal_log, caplog, kwargs, error
):
    payment = PaymentFactory(package=package, provider_reference="REF1")
    before = state(payment)
    arguments = {"provider_reference": "REF1", "succeeded": True, "amount": "50", "raw": RAW}
    with caplog.at_level(logging.WARNING, logger="payments.callback"), pytest.raises(error):
        services.payment_record_callback(**{**arguments, **kwargs})
    assert state(payment) == before == ("pending", "", None, 0)
    assert signal_log == []
    assert any("rejected" in record.getMessage() for record in caplog.records)


def test_callback_scoped_to_a_tenant_does_not_find_another_tenants_payment(package, other_tenant):
    payment = PaymentFactory(package=package, provider_reference="REF1")
    with pytest.raises(NotFound):
        services.payment_record_callback(
            provider_reference="REF1", succeeded=True, amount="50", raw=RAW, tenant=other_tenant
        )
    assert state(payment) == ("pending", "", None, 0)


@pytest.mark.parametrize("first", [True, False])
def test_contradicting_callback_is_refused(package, signal_log, first):
    payment = PaymentFactory(package=package, provider_reference="REF1")
    services.payment_record_callback(provider_reference="REF1", succeeded=first, amount=50, raw=RAW)
    before, sent = state(payment), len(signal_log)
    with pytest.raises(InvalidTransition, match="already"):
        services.payment_record_callback(
            provider_reference="REF1", succeeded=not first, amount=50, raw={"other": 1}
        )
    assert state(payment) == before
    assert len(signal_log) == sent


def test_direct_transitions_refuse_settled_payments(package):
    payment = PaymentFactory(package=package)
    services.payment_complete(payment=payment)
    with pytest.raises(InvalidTransition):
        services.payment_complete(payment=payment)
    with pytest.raises(InvalidTransition):
        services.payment_fail(payment=payment, reason="late")
    assert HotspotUser.objects.filter(payment=payment).count() == 1


def test_paid_customer_gets_credentials_even_if_package_left_sale(package):
    """The money has moved: taking the package off sale later must not strand the payment."""
    PaymentFactory(package=package, provider_reference="REF1")
    package.is_active = False
    package.save()
    result = services.payment_record_callback(
        provider_reference="REF1", succeeded=True, amount="50", raw=RAW
    )
    assert result.payment.status == "completed" and result.hotspot_user is not None


def test_provisioning_is_exactly_once(package):
    from hotspot.services import hotspot_user_provision_for_payment

    payment = PaymentFactory(package=package)
    _, hotspot_user = services.payment_complete(payment=payment)
    assert hotspot_user_provision_for_payment(payment=payment) == hotspot_user
    assert HotspotUser.objects.count() == 1
