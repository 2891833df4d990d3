"""Simultaneous provider callbacks for one payment provision exactly one hotspot user.

Needs real row locks (SELECT ... FOR UPDATE), so it runs in the PostgreSQL pass.
"""

import pytest

from hotspot.models import HotspotUser
from payments.models import Payment
from payments.services import payment_record_callback
from tests.concurrency import run_concurrently
from tests.factories import PackageFactory, PaymentFactory, TenantFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_duplicate_callbacks_complete_once():
    package = PackageFactory(tenant=TenantFactory(slug="acme"))
    PaymentFactory(package=package, provider_reference="RACE1")

    def deliver(_: int):
        return payment_record_callback(
            provider_reference="RACE1", succeeded=True, amount="50", raw={"n": 1}
        )

    results = run_concurrently(deliver, 4)
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert len({r.hotspot_user.pk for r in results}) == 1
    assert HotspotUser.objects.count() == 1
    assert Payment.objects.get(provider_reference="RACE1").status == "completed"
