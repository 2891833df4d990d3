"""/reports/ in a real browser: the chart renders under the CSP, follows a payment live, and the
CSV it offers carries the same totals."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from tests.browser.live import wait_connected, wait_for
from tests.browser.test_csp import open_page, violations

pytestmark = [pytest.mark.browser, pytest.mark.live]

PAY = """
from hotspot.models import Package
from payments.services import payment_initiate, payment_record_callback
from tenants.models import Tenant
acme = Tenant.objects.get(slug="acme")
package = Package.objects.filter(tenant=acme, is_active=True, price__gt=0).order_by("price").first()
payment = payment_initiate(tenant=acme, package=package, phone="254733000222")
payment_record_callback(provider_reference=payment.provider_reference, succeeded=True,
                        amount=payment.amount, raw={"demo": True})
print("AMOUNT", payment.amount)
"""

CHART_TOTAL = (
    "(() => { const c = window.Chart && Chart.getChart('chart-day');"
    " return c ? c.data.datasets.reduce((s, d) => s + d.data.reduce((a, b) => a + b, 0), 0)"
    " : null; })()"
)


def csv_total(page, link: str) -> tuple[list[str], list[list[str]]]:
    with page.expect_download() as info:
        page.click(link)
    with open(info.value.path(), "rb") as file:
        raw = file.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    return rows[-1], rows


def test_chart_renders_updates_on_payment_and_csv_totals_match(new_page, server):
    page = open_page(new_page, "acme-admin")
    page.goto(f"{server.url}/reports/")
    wait_connected(page)
    wait_for(page, "document.getElementById('report').dataset.chartReady === '1'")
    # Chart.js drew into the canvas (a non-empty bitmap of the box's size).
    assert page.evaluate("document.getElementById('chart-day').width") > 100
    before = Decimal(str(page.evaluate(CHART_TOTAL)))
    total_row, _ = csv_total(page, "#csv-day")
    assert total_row[0] == "Total" and Decimal(total_row[2]) == before

    out = server.manage("shell", "-c", PAY)
    amount = Decimal(out.split("AMOUNT", 1)[1].split()[0])
    wait_for(page, "Number(document.getElementById('report').dataset.updates || 0) >= 1")
    wait_for(page, f"Math.abs({CHART_TOTAL} - {before + amount}) < 0.001", timeout=10_000)
    revenue = page.locator('[data-report="revenue"]').inner_text()
    assert revenue == f"KES {before + amount:.2f}"
    # The tables were refreshed too, and the CSV links still give the new figures.
    foot = page.locator('[data-report-table="method"] tfoot tr').first.inner_text()
    assert f"{before + amount:.2f}" in foot
    total_row, rows = csv_total(page, "#csv-day")
    assert rows[0] == ["Date", "Sales", "Revenue", "Currency"]
    assert total_row == ["Total", total_row[1], f"{before + amount:.2f}", "KES"]
    method_total, _ = csv_total(page, "#csv-method")
    assert Decimal(method_total[2]) == before + amount
    assert violations(page) == []


def test_bad_range_is_shown_and_staff_are_refused(new_page, server):
    page = new_page("acme-admin")
    page.goto(f"{server.url}/reports/?start=2026-12-05&end=2026-12-01")
    assert "start date must be on or before" in page.locator("#report-error").inner_text()
    staff = new_page("acme-staff")
    response = staff.goto(f"{server.url}/reports/")
    assert response.status == 403
