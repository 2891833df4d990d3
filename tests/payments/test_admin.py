"""Payments in the Django admin: searchable, filterable, read-only, phones masked."""

from tests.factories import PaymentFactory

PAYMENTS = "/admin/payments/payment/"


def test_list_search_filter_and_masking(sysadmin_client, package):
    done = PaymentFactory(package=package, provider_reference="QAB1", status="completed")
    PaymentFactory(package=package, provider_reference="QZZ9", phone="254799000111")
    page = sysadmin_client.get(PAYMENTS)
    assert "QAB1" in page.text and "2547****678" in page.text
    assert "254712345678" not in page.text
    page = sysadmin_client.get(PAYMENTS, {"status__exact": "completed"})
    assert "QAB1" in page.text and "QZZ9" not in page.text
    page = sysadmin_client.get(PAYMENTS, {"q": "254799000111"})
    assert "QZZ9" in page.text and "QAB1" not in page.text
    detail = sysadmin_client.get(f"{PAYMENTS}{done.pk}/change/")
    assert detail.status_code == 200 and "254712345678" not in detail.text
    assert 'name="_save"' not in detail.text


def test_payments_cannot_be_added_changed_or_deleted(sysadmin_client, package):
    payment = PaymentFactory(package=package)
    assert sysadmin_client.get(PAYMENTS + "add/").status_code == 403
    assert sysadmin_client.get(f"{PAYMENTS}{payment.pk}/delete/").status_code == 403
