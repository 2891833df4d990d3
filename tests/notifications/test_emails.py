"""The platform's emails, sent through a real SMTP server (aiosmtpd on a free port).

Each change runs through its service (or page) and commits; the email must then arrive at the
SMTP server with the right recipients and content, rendered as text and HTML.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts import signals as account_signals
from accounts.models import User
from notifications.email_models import OutgoingEmail
from notifications.mailer import deliver_due, mailer
from tenants import services as tenant_services
from tenants.models import Tenant
from tests.admin_helpers import csrf_token
from tests.factories import DEFAULT_PASSWORD, SystemAdminFactory, TenantAdminFactory, TenantFactory
from tests.liveserver import free_port, manage_check

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0

pytestmark = pytest.mark.django_db(transaction=True)


class Inbox:
    """aiosmtpd handler: keeps every message it accepts, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append(envelope)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"

    def wait_for(self, count: int = 1, *, subject: str = "") -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            found = [m for m in self.messages if subject in m["Subject"]]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"{count} email(s) with {subject!r} not received; got "
            f"{[m['Subject'] for m in self.messages]}; outbox "
            f"{list(OutgoingEmail.objects.values('kind', 'status', 'last_error'))}"
        )


class SMTPServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller = aiosmtpd_controller.Controller(
            self.inbox, hostname="127.0.0.1", port=port
        )

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_settings(settings):
    """Django's SMTP backend pointed at a port of our own (nothing listens there yet)."""
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = "http://hotspot.test"
    yield port
    mailer.stop()


@pytest.fixture
def smtp(smtp_settings):
    server = SMTPServer(smtp_settings).start()
    yield server.inbox
    server.stop()


def parts(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def recipients(message) -> set[str]:
    return {address.strip() for address in message["To"].split(",")}


def test_registration_on_the_public_page_emails_the_registrant_and_the_system_admins(smtp):
    SystemAdminFactory(username="root", email="root@platform.example")
    response = Client().post(
        "/register/",
        {
            "name": "Kilimani <Wifi>",
            "slug": "kilimani",
            "contact_email": "owner@kilimani.example",
            "admin_first_name": "Amina",
            "admin_username": "amina",
            "admin_password": "Strong-pass-917",
            "admin_password_confirm": "Strong-pass-917",
        },
    )
    assert response.status_code == 302

    (to_registrant,) = smtp.wait_for(subject="Registration received")
    assert recipients(to_registrant) == {"owner@kilimani.example"}
    text, html = parts(to_registrant)
    assert "Kilimani <Wifi>" in text and "pending approval" in text
    assert "Kilimani &lt;Wifi&gt;" in html and "<Wifi>" not in html
    assert "amina" in text and "Strong-pass-917" not in text + html

    (to_admins,) = smtp.wait_for(subject="New registration awaiting approval")
    assert recipients(to_admins) == {"root@platform.example"}
    assert "http://hotspot.test/system/tenants/" in parts(to_admins)[0]
    # The registrant chose their own password: no "set your password" email.
    assert not [m for m in smtp.messages if "Your Hotspot Billing account" in m["Subject"]]


def test_tenant_approved_emails_the_contact_and_tenant_admins(smtp):
    root = SystemAdminFactory()
    tenant = TenantFactory(status=Tenant.Status.PENDING, approved_at=None)
    TenantAdminFactory(tenant=tenant, username="boss", email="boss@t.example")
    tenant_services.tenant_approve(tenant=tenant, by=root)

    (message,) = smtp.wait_for(subject="is approved")
    assert recipients(message) == {tenant.contact_email, "boss@t.example"}
    assert "http://hotspot.test/accounts/login/" in parts(message)[0]


def test_tenant_suspended_email_carries_the_reason(smtp):
    root = SystemAdminFactory()
    tenant = TenantFactory()
    tenant_services.tenant_suspend(tenant=tenant, reason="Unpaid invoice #42", by=root)

    (message,) = smtp.wait_for(subject="has been suspended")
    assert recipients(message) == {tenant.contact_email}
    text, html = parts(message)
    assert "Unpaid invoice #42" in text and "Unpaid invoice #42" in html


def test_account_created_email_links_to_set_password_never_the_password(smtp):
    admin = TenantAdminFactory()
    user = account_services.user_create(
        username="wanjiru",
        password="Initial-pass-553",
        role=User.Role.STAFF,
        tenant=admin.tenant,
        email="wanjiru@example.com",
        by=admin,
    )
    (message,) = smtp.wait_for(subject="Your Hotspot Billing account")
    assert recipients(message) == {"wanjiru@example.com"}
    text, html = parts(message)
    assert "Initial-pass-553" not in text + html
    link = re.search(r"http://hotspot\.test(/accounts/set-password/\S+/)", text).group(1)
    assert link in html

    # The link sets the password once; the new one signs in.
    client = Client()
    page = client.get(link, follow=True)
    assert page.status_code == 200 and b'id="set-password-form"' in page.content
    form_url = page.redirect_chain[-1][0]
    done = client.post(
        form_url, {"new_password1": "Chosen-pass-8812", "new_password2": "Chosen-pass-8812"}
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/login/"
    user.refresh_from_db()
    assert user.check_password("Chosen-pass-8812")
    # Used once: the same link no longer works.
    again = Client().get(link, follow=True)
    assert b'id="set-password-invalid"' in again.content
    # Setting it is a password change like any other, and says so by email.
    smtp.wait_for(subject="Your password was changed")


def test_set_password_link_with_a_bad_token_changes_nothing(smtp_settings):
    user = TenantAdminFactory()
    page = Client().get(f"/accounts/set-password/{user.pk}/not-a-token/", follow=True)
    assert b'id="set-password-invalid"' in page.content
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_password_changed_email(smtp):
    user = TenantAdminFactory(email="me@example.com")
    account_services.user_change_password(user=user, new_password="Brand-new-pw-77", by=user)
    (message,) = smtp.wait_for(subject="Your password was changed")
    assert recipients(message) == {"me@example.com"}
    text, _ = parts(message)
    assert user.username in text and "Brand-new-pw-77" not in text


def test_sign_in_locked_email(smtp):
    user = TenantAdminFactory(email="locked@example.com")
    until = timezone.now() + timezone.timedelta(minutes=30)
    with transaction.atomic():  # as accounts' sign-in throttle sends it
        account_signals.sign_in_locked.send(
            sender=User, user=user, username=user.username, address="203.0.113.9", until=until
        )
    (message,) = smtp.wait_for(subject="Sign-in locked")
    assert recipients(message) == {"locked@example.com"}
    text, html = parts(message)
    assert "203.0.113.9" in text and "203.0.113.9" in html
    assert f"{timezone.localtime(until, user.tenant.tzinfo):%Y-%m-%d %H:%M}" in text  # as mailed


def test_sign_in_locked_email_gives_the_time_in_the_tenants_zone(smtp):
    """A Lagos tenant's admin reads 23:30 WAT, not Nairobi's 01:30 of the next day."""
    tenant = TenantFactory(time_zone="Africa/Lagos")
    user = TenantAdminFactory(tenant=tenant, email="lagos@example.com")
    until = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
    with transaction.atomic():
        account_signals.sign_in_locked.send(
            sender=User, user=user, username=user.username, address="203.0.113.9", until=until
        )
    (message,) = smtp.wait_for(subject="Sign-in locked")
    text, html = parts(message)
    assert "2026-12-01 23:30 WAT" in text and "2026-12-01 23:30 WAT" in html
    assert "01:30" not in text


def test_sign_in_locked_for_an_unknown_username_sends_nothing(smtp_settings):
    with transaction.atomic():
        account_signals.sign_in_locked.send(
            sender=User, user=None, username="ghost", address="203.0.113.9", until=None
        )
    assert not OutgoingEmail.objects.exists()


def test_a_rolled_back_change_sends_nothing(smtp_settings):
    admin = TenantAdminFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        account_services.user_change_password(user=admin, new_password="Brand-new-pw-77", by=admin)
        raise RuntimeError("the change fails later")
    assert not OutgoingEmail.objects.exists()


def test_smtp_down_then_up_the_email_is_retried_and_delivered_once(smtp_settings):
    """The change commits while SMTP is down; the outbox retries until the server is up."""
    root = SystemAdminFactory()
    tenant = TenantFactory()
    tenant_services.tenant_suspend(tenant=tenant, reason="Chargebacks", by=root)
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.SUSPENDED

    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        row = OutgoingEmail.objects.get()
        if row.attempts >= 2:
            break
        time.sleep(0.05)
    assert row.attempts >= 2 and row.status == OutgoingEmail.Status.PENDING
    assert "Connection refused" in row.last_error or "Errno" in row.last_error

    server = SMTPServer(smtp_settings).start()
    try:
        (message,) = server.inbox.wait_for(subject="has been suspended")
        assert "Chargebacks" in parts(message)[0]
        deadline = time.monotonic() + DEADLINE
        while OutgoingEmail.objects.get().status != OutgoingEmail.Status.SENT:
            assert time.monotonic() < deadline, "outbox row never marked sent"
            time.sleep(0.05)
        # A later pass finds nothing to send: delivered exactly once.
        mailer.stop()
        assert deliver_due() is None
        assert len(server.inbox.messages) == 1
    finally:
        server.stop()


def test_a_rendering_failure_never_fails_the_change(smtp_settings, settings, tmp_path):
    """Missing email templates are logged; the tenant is still suspended."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    root = SystemAdminFactory()
    tenant = TenantFactory()
    tenant_services.tenant_suspend(tenant=tenant, reason="Chargebacks", by=root)
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.SUSPENDED
    assert not OutgoingEmail.objects.exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://127.0.0.1:1025",
            "django.core.mail.backends.smtp.EmailBackend 127.0.0.1 1025 False  10",
        ),
        (
            "submission://user:pass@mail.example:587",
            "django.core.mail.backends.smtp.EmailBackend mail.example 587 True user 10",
        ),
        ("", "django.core.mail.backends.console.EmailBackend localhost 25 False  10"),
    ],
)
def test_email_url_selects_smtp_in_local_settings(url, expected):
    code = (
        "from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, "
        "s.EMAIL_HOST_USER, s.EMAIL_TIMEOUT)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "EMAIL_URL": url}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected


def test_a_shell_that_exits_at_once_still_sends_its_email(smtp, smtp_settings, tmp_path):
    """`manage.py shell -c "user_create(...)"` ends right after the commit: the email is sent
    before the process exits, not left for the next server start."""
    from tests.liveserver import database_url_for_servers

    admin = TenantAdminFactory(username="boss")
    script = (
        "from accounts.models import User; from accounts.services import user_create; "
        "boss = User.objects.get(username='boss'); "
        "user_create(username='late', password='Late-pass-7781', role='staff', "
        "tenant=boss.tenant, email='late@example.com', by=boss)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_servers(),
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_settings}",
    }
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (message,) = smtp.wait_for(subject="Your Hotspot Billing account")
    assert recipients(message) == {"late@example.com"}
    assert OutgoingEmail.objects.get(kind="account_created").status == OutgoingEmail.Status.SENT
    assert admin.tenant.users.filter(username="late").exists()


def test_a_system_admin_sees_a_failed_email_and_sends_it_again(smtp, sysadmin_client):
    failed = OutgoingEmail.objects.create(
        kind="tenant_approved",
        to=["ops@gave-up.example"],
        subject="Gave up <once>",
        body_text="Hello",
        status=OutgoingEmail.Status.FAILED,
        attempts=12,
        last_error="SMTPServerDisconnected: gone",
    )
    page = sysadmin_client.get("/admin/notifications/outgoingemail/?status=failed")
    assert page.status_code == 200
    html = page.content.decode()
    assert "ops@gave-up.example" in html and "Gave up &lt;once&gt;" in html
    response = sysadmin_client.post(
        "/admin/notifications/outgoingemail/",
        {
            "action": "retry_now",
            "_selected_action": [failed.pk],
            "csrfmiddlewaretoken": csrf_token(
                sysadmin_client, "/admin/notifications/outgoingemail/"
            ),
        },
    )
    assert response.status_code == 302
    (message,) = smtp.wait_for(subject="Gave up <once>")
    assert recipients(message) == {"ops@gave-up.example"}


def test_tenant_admins_cannot_see_the_outbox(client, smtp_settings):
    client.force_login(TenantAdminFactory())
    assert client.get("/admin/notifications/outgoingemail/").status_code in (302, 403)


@pytest.mark.parametrize(
    ("url", "says"),
    [("smtpx://mail.example", "unknown scheme 'smtpx'"), ("smtp://host:port", "not a valid")],
)
def test_a_bad_email_url_stops_the_start_with_a_clear_message(url, says):
    out = manage_check("config.settings.local", EMAIL_URL=url)
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr and says in out.stderr


def test_set_password_refuses_a_mismatch_or_a_weak_password_and_keeps_the_link(smtp):
    admin = TenantAdminFactory()
    user = account_services.user_create(
        username="odhiambo",
        password="Initial-pass-553",
        role=User.Role.STAFF,
        tenant=admin.tenant,
        email="odhiambo@example.com",
        by=admin,
    )
    (message,) = smtp.wait_for(subject="Your Hotspot Billing account")
    link = re.search(r"http://hotspot\.test(/accounts/set-password/\S+/)", parts(message)[0])[1]
    client = Client()
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    for first, second, says in [
        ("Chosen-pass-8812", "Chosen-pass-8813", "didn’t match"),
        ("123", "123", "too short"),
    ]:
        page = client.post(form_url, {"new_password1": first, "new_password2": second})
        assert page.status_code == 200 and says in page.content.decode()
    user.refresh_from_db()
    assert user.check_password("Initial-pass-553")  # nothing changed
    done = client.post(
        form_url, {"new_password1": "Chosen-pass-8812", "new_password2": "Chosen-pass-8812"}
    )
    assert done.status_code == 302  # the link still works after the refused tries


# --- the recipient's language (User.language; default LANGUAGE_CODE) ------------------------


def test_a_swahili_user_gets_their_password_email_in_swahili(smtp):
    user = TenantAdminFactory(email="juma@example.com", language="sw")
    account_services.user_change_password(user=user, new_password="Brand-new-pw-77", by=user)
    (message,) = smtp.wait_for(subject="Nenosiri lako limebadilishwa")
    text, html = parts(message)
    assert f"Nenosiri la akaunti yako {user.username} limebadilishwa." in text
    assert 'lang="sw"' in html and "Kama si wewe" in html


def test_tenant_approved_goes_out_once_per_language(smtp):
    """One email per language: the Swahili admin's and the English admin's."""
    root = SystemAdminFactory(language="fr")  # the approver's language is nobody's email's
    tenant = TenantFactory(status=Tenant.Status.PENDING, approved_at=None, name="Duka WiFi")
    TenantAdminFactory(tenant=tenant, username="juma", email="juma@t.example", language="sw")
    TenantAdminFactory(tenant=tenant, username="jane", email="jane@t.example")
    tenant_services.tenant_approve(tenant=tenant, by=root)

    (swahili,) = smtp.wait_for(subject="Duka WiFi imeidhinishwa")
    (english,) = smtp.wait_for(subject="Duka WiFi is approved")
    # the contact address reads the language of the tenant's first admin
    assert recipients(swahili) == {tenant.contact_email, "juma@t.example"}
    assert recipients(english) == {"jane@t.example"}
    assert "Habari njema: Duka WiFi imeidhinishwa." in parts(swahili)[0]
