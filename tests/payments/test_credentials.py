"""Tenants' own Daraja accounts: encrypted at rest, never shown back, set by tenant admins only."""

from __future__ import annotations

import pytest
from django.db import connection

from config.errors import PermissionDenied
from payments import services
from payments.models import DarajaCredentials
from tests.admin_helpers import csrf_token
from tests.liveserver import PRODUCTION_SECRETS, manage_check
from tests.payments.daraja_standin import SANDBOX_PASSKEY

pytestmark = pytest.mark.django_db
SECRETS = (SANDBOX_PASSKEY, "demo-key-0123456789", "demo-secret-0123456789")


def set_demo(tenant, by=None):
    return services.daraja_credentials_set(
        tenant=tenant,
        by=by,
        shortcode="174379",
        passkey=SECRETS[0],
        consumer_key=SECRETS[1],
        consumer_secret=SECRETS[2],
    )


def test_a_database_dump_does_not_reveal_the_secrets(tenant):
    set_demo(tenant)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM payments_darajacredentials")
        dump = repr(cursor.fetchall())
    for secret in SECRETS:
        assert secret not in dump
    stored = DarajaCredentials.objects.get(tenant=tenant)
    assert (stored.passkey, stored.consumer_key, stored.consumer_secret) == SECRETS


def test_blank_secrets_keep_the_stored_ones_and_bad_input_is_refused(tenant):
    set_demo(tenant)
    services.daraja_credentials_set(tenant=tenant, by=None, shortcode="600100")
    stored = DarajaCredentials.objects.get(tenant=tenant)
    assert stored.shortcode == "600100" and stored.passkey == SECRETS[0]
    with pytest.raises(services.ValidationError) as caught:
        services.daraja_credentials_set(
            tenant=tenant, by=None, shortcode="12ab", account_type="till", till_number=""
        )
    assert set(caught.value.message_dict) == {"shortcode", "till_number"}
    assert DarajaCredentials.objects.get(tenant=tenant).shortcode == "600100"


def test_only_the_tenants_admins_may_set_it(tenant, staff, other_admin, tenant_admin):
    for person in (staff, other_admin):
        with pytest.raises(PermissionDenied):
            set_demo(tenant, by=person)
    assert not DarajaCredentials.objects.exists()
    set_demo(tenant, by=tenant_admin)


def test_settings_page_shows_masked_secrets_and_saves_the_form(client, tenant_admin):
    set_demo(tenant_admin.tenant)
    client.force_login(tenant_admin)
    page = client.get("/settings/").content.decode()
    assert 'id="mpesa-form"' in page and "174379" in page
    for secret in SECRETS:
        assert secret not in page
    assert "••••" + SECRETS[2][-4:] in page
    response = client.post(
        "/settings/mpesa/",
        {"mpesa-shortcode": "600100", "mpesa-account_type": "paybill", "mpesa-passkey": "new-pk"},
    )
    assert response.status_code == 302
    stored = DarajaCredentials.objects.get(tenant=tenant_admin.tenant)
    assert (stored.shortcode, stored.passkey, stored.consumer_secret) == (
        "600100",
        "new-pk",
        SECRETS[2],
    )
    bad = client.post("/settings/mpesa/", {"mpesa-shortcode": "x", "mpesa-account_type": "paybill"})
    assert bad.status_code == 400 and "5 to 10 digits" in bad.content.decode()


def test_staff_cannot_post_the_mpesa_form(client, staff):
    client.force_login(staff)
    assert 'id="mpesa-form"' not in client.get("/settings/").content.decode()
    response = client.post("/settings/mpesa/", {"mpesa-shortcode": "600100"})
    assert response.status_code == 403 and not DarajaCredentials.objects.exists()


def test_django_admin_edits_it_without_showing_secrets(sysadmin_client, tenant):
    set_demo(tenant)
    stored = DarajaCredentials.objects.get(tenant=tenant)
    url = f"/admin/payments/darajacredentials/{stored.pk}/change/"
    page = sysadmin_client.get(url).content.decode()
    for secret in SECRETS:
        assert secret not in page
    response = sysadmin_client.post(
        url,
        {
            "csrfmiddlewaretoken": csrf_token(sysadmin_client, url),
            "tenant": tenant.pk,
            "shortcode": "174380",
            "account_type": "paybill",
            "till_number": "",
        },
    )
    assert response.status_code == 302
    stored.refresh_from_db()
    assert stored.shortcode == "174380" and stored.consumer_key == SECRETS[1]


def _production_check(**env):
    """`manage.py check` with the production settings (no M-Pesa setting of this environment's)."""
    return manage_check(
        "config.settings.production", drop=("DEBUG", "MPESA_"), **PRODUCTION_SECRETS | env
    )


@pytest.mark.parametrize(
    ("env", "code"),
    [
        ({"MPESA_SIMULATOR": "1"}, "payments.E001"),
        ({"MPESA_API_URL": "https://hotspot.example.com/dev/mpesa"}, "payments.E002"),
        ({"PAYMENTS_ENCRYPTION_KEYS": ""}, "payments.E004"),
        ({"PAYMENTS_ENCRYPTION_KEYS": "not-a-key"}, "payments.E004"),
    ],
)
def test_production_refuses_a_bad_payments_config(env, code):
    result = _production_check(**env)
    assert result.returncode != 0 and code in result.stderr, result.stderr


def test_production_serves_no_simulator(client):
    assert client.get("/dev/mpesa/").status_code == 404  # test settings: simulator off


def test_vouchers_and_sms_are_listed_read_only_in_django_admin(sysadmin_client, tenant, package):
    from payments.models import SmsMessage
    from payments.vouchers import voucher_batch_create

    voucher_batch_create(tenant=tenant, package=package, count=2, by=None)
    SmsMessage.objects.create(tenant=tenant, phone="254712345678", body="password s3cr3t-pw")
    for url in ("/admin/payments/voucherbatch/", "/admin/payments/voucher/"):
        assert sysadmin_client.get(url).status_code == 200
    page = sysadmin_client.get("/admin/payments/smsmessage/").content.decode()
    assert "2547****678" in page and "s3cr3t-pw" not in page
    assert sysadmin_client.get("/admin/payments/voucher/add/").status_code == 403
