"""Payment reads: scoped, searchable by reference or phone, filterable, with totals."""

from decimal import Decimal

import pytest

from config.errors import NotFound
from payments import selectors
from tests.factories import PackageFactory, PaymentFactory


@pytest.fixture
def rows(tenant, other_tenant):
    package = PackageFactory(tenant=tenant, price=Decimal("50"))
    return {
        "done": PaymentFactory(package=package, provider_reference="QAB1", status="completed"),
        "done2": PaymentFactory(package=package, provider_reference="QAB2", status="completed"),
        "failed": PaymentFactory(
            package=package, provider_reference="QZZ9", status="failed", phone="254799000111"
        ),
        "beta": PaymentFactory(
            package=PackageFactory(tenant=other_tenant), provider_reference="QAB3"
        ),
    }


def test_list_search_filter(tenant_admin, system_admin, rows):
    assert set(selectors.payment_list(user=tenant_admin)) == {
        rows["done"],
        rows["done2"],
        rows["failed"],
    }
    assert set(selectors.payment_list(user=tenant_admin, search="qab")) == {
        rows["done"],
        rows["done2"],
    }
    assert list(selectors.payment_list(user=tenant_admin, search="+254 799")) == [rows["failed"]]
    assert list(selectors.payment_list(user=tenant_admin, status="failed")) == [rows["failed"]]
    assert len(selectors.payment_list(user=system_admin, search="QAB")) == 3


def test_get_is_scoped(tenant_admin, rows):
    assert selectors.payment_get(user=tenant_admin, payment_id=rows["done"].pk) == rows["done"]
    for bad in (rows["beta"].pk, "x", None):
        with pytest.raises(NotFound):
            selectors.payment_get(user=tenant_admin, payment_id=bad)


def test_totals(tenant_admin, other_admin, rows):
    totals = selectors.payment_totals(user=tenant_admin)
    assert totals == {
        "counts": {"pending": 0, "completed": 2, "failed": 1},
        "revenue": Decimal("100.00"),
    }
    assert selectors.payment_totals(user=other_admin)["counts"]["pending"] == 1
