"""`manage.py seed_demo [--password P]`: idempotent demo data, created through the services.

Creates only what is missing (rows are found by their natural keys), so a second run changes
nothing. `--password P` also resets every demo user's password to P on later runs; without
it, existing demo users keep theirs. Refuses under production settings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from accounts.services import user_change_password, user_create
from config.errors import DomainError
from hotspot.models import HotspotUser, Package
from hotspot.services import hotspot_user_create, package_create
from payments.models import DarajaCredentials, Payment
from payments.services import daraja_credentials_set, payment_initiate, payment_record_callback
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_register

DEFAULT_PASSWORD = "demo-pass-2026"
DEFAULT_URL = "http://127.0.0.1:8000/"

ACTIVE_TENANTS = [
    {"slug": "acme", "name": "Acme WiFi", "contact_email": "ops@acme.example",
     "contact_phone": "254700100100"},
    {"slug": "beta", "name": "Beta Net", "contact_email": "ops@beta.example",
     "contact_phone": "254700200200"},
]  # fmt: skip
PENDING_TENANT = {"slug": "gamma", "name": "Gamma Spots", "contact_email": "ops@gamma.example",
                  "admin_username": "gamma-admin"}  # fmt: skip
TENANT_USERS = [
    # username, role, tenant slug, first name, last name
    ("acme-admin", User.Role.TENANT_ADMIN, "acme", "Amina", "Otieno"),
    ("acme-staff", User.Role.STAFF, "acme", "Brian", "Kamau"),
    ("beta-admin", User.Role.TENANT_ADMIN, "beta", "Chloe", "Wanjiku"),
]
PACKAGES = {
    # name, price, minutes, data MB (None: unlimited), speed
    "acme": [
        ("1 Hour", "20.00", 60, 500, "2M/1M"),
        ("Daily", "50.00", 1440, 2048, "5M/2M"),
        ("Weekly", "300.00", 10080, None, "10M/5M"),
    ],
    "beta": [
        ("30 Minutes", "10.00", 30, 250, "2M/1M"),
        ("Daily Unlimited", "80.00", 1440, None, "8M/4M"),
    ],
    # Pending: its packages are ready, but it sells nothing until a system admin approves it.
    "gamma": [("2 Hours", "30.00", 120, 1024, "4M/2M")],
}
HOTSPOT_USERS = {
    # username, package, phone
    "acme": [("acme-guest-1", "Daily", "254711000001"), ("acme-guest-2", "1 Hour", "254711000002")],
    "beta": [("beta-guest-1", "Daily Unlimited", "254722000001")],
}
# Daraja's sandbox: its shared test shortcode and published passkey (developer.safaricom.co.ke);
# with the simulator (make run) any consumer key/secret works.
SANDBOX_DARAJA = {
    "shortcode": "174379",
    "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
    "consumer_key": "demo-key",
    "consumer_secret": "demo-secret",
}
DARAJA_TENANTS = ("acme",)
PAYMENTS = {
    # provider reference, package, phone, outcome (True completed, False failed, None pending)
    "acme": [
        ("DEMO-ACME-0001", "Daily", "254711000003", True),
        ("DEMO-ACME-0002", "Weekly", "254711000004", False),
        ("DEMO-ACME-0003", "1 Hour", "254711000005", None),
    ],
    "beta": [
        ("DEMO-BETA-0001", "30 Minutes", "254722000002", True),
        ("DEMO-BETA-0002", "Daily Unlimited", "254722000003", None),
    ],
}


class Command(BaseCommand):
    help = (
        "Load the demo data (idempotent): sysadmin; tenants acme, beta (active) and gamma "
        "(pending); users acme-admin, acme-staff, beta-admin, gamma-admin; packages, hotspot "
        f"users and payments. Demo users get --password (default {DEFAULT_PASSWORD!r}); on a "
        "later run, --password resets existing demo users' passwords."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            help=f"Password for every demo user (default {DEFAULT_PASSWORD!r}). Given on a later "
            "run, it also resets the existing demo users' passwords.",
        )
        parser.add_argument("--url", default=DEFAULT_URL, help="Site URL to print.")

    def handle(self, *args: Any, password: str | None, url: str, **options: Any) -> None:
        if not getattr(settings, "DEMO_DATA_ALLOWED", False):
            raise CommandError(
                "seed_demo refuses to run under these settings (DEMO_DATA_ALLOWED is False, as in "
                "config.settings.production): demo accounts with a published password must never "
                "exist in production."
            )
        self.created: list[str] = []
        try:
            with transaction.atomic():
                reset = self.seed(password or DEFAULT_PASSWORD, reset_passwords=bool(password))
        except (ValidationError, DomainError) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError("Demo data not loaded: " + " ".join(messages)) from exc
        self.report(password or DEFAULT_PASSWORD, url.rstrip("/") + "/", reset, bool(password))

    # --- creation (only what is missing) --------------------------------------------------

    def seed(self, password: str, *, reset_passwords: bool) -> list[str]:
        sysadmin = User.objects.filter(username="sysadmin").first()
        if sysadmin is None:
            sysadmin = user_create(
                username="sysadmin",
                password=password,
                role=User.Role.SYSTEM_ADMIN,
                email="sysadmin@platform.example",
                first_name="System",
                last_name="Admin",
                by=None,
            )
            self.created.append("user sysadmin")

        tenants = {}
        for spec in ACTIVE_TENANTS:
            tenant = Tenant.objects.filter(slug=spec["slug"]).first()
            if tenant is None:
                tenant = tenant_create(by=sysadmin, status=Tenant.Status.ACTIVE, **spec)
                self.created.append(f"tenant {tenant.slug}")
            tenants[tenant.slug] = tenant

        if not Tenant.objects.filter(slug=PENDING_TENANT["slug"]).exists():
            tenant_register(
                name=PENDING_TENANT["name"],
                slug=PENDING_TENANT["slug"],
                contact_email=PENDING_TENANT["contact_email"],
                admin_username=PENDING_TENANT["admin_username"],
                admin_password=password,
                admin_first_name="Grace",
                admin_last_name="Njeri",
            )
            self.created.append("tenant gamma (pending) and user gamma-admin")

        for username, role, slug, first_name, last_name in TENANT_USERS:
            if not User.objects.filter(username=username).exists():
                user_create(
                    username=username,
                    password=password,
                    role=role,
                    tenant=tenants[slug],
                    email=f"{username}@{slug}.example",
                    first_name=first_name,
                    last_name=last_name,
                    by=sysadmin,
                )
                self.created.append(f"user {username}")

        tenants["gamma"] = Tenant.objects.get(slug=PENDING_TENANT["slug"])
        for slug, tenant in tenants.items():
            admin = User.objects.filter(username=f"{slug}-admin", tenant=tenant).first()
            self.seed_tenant_business(tenant, admin)

        reset = []
        if reset_passwords:
            for user in User.objects.filter(username__in=demo_usernames()).order_by("username"):
                if not user.check_password(password):
                    user_change_password(user=user, new_password=password, by=None)
                    reset.append(user.username)
        return reset

    def seed_tenant_business(self, tenant: Tenant, admin: User | None) -> None:
        for name, price, minutes, data_mb, speed in PACKAGES[tenant.slug]:
            if not Package.objects.filter(tenant=tenant, name=name).exists():
                package_create(
                    tenant=tenant,
                    name=name,
                    price=Decimal(price),
                    duration_minutes=minutes,
                    data_limit_mb=data_mb,
                    speed_limit=speed,
                    by=admin,
                )
                self.created.append(f"package {tenant.slug}/{name}")
        if tenant.status != Tenant.Status.ACTIVE:  # pending gamma, or suspended while demoing
            return
        if tenant.slug in DARAJA_TENANTS and not DarajaCredentials.objects.filter(tenant=tenant):
            daraja_credentials_set(tenant=tenant, by=None, **SANDBOX_DARAJA)
            self.created.append(f"M-Pesa account {tenant.slug} (sandbox shortcode 174379)")
        packages = {p.name: p for p in Package.objects.filter(tenant=tenant)}
        for username, package_name, phone in HOTSPOT_USERS.get(tenant.slug, []):
            if not HotspotUser.objects.filter(tenant=tenant, username=username).exists():
                hotspot_user_create(
                    tenant=tenant,
                    package=packages[package_name],
                    username=username,
                    phone=phone,
                    by=admin,
                )
                self.created.append(f"hotspot user {tenant.slug}/{username}")
        for reference, package_name, phone, outcome in PAYMENTS.get(tenant.slug, []):
            if Payment.objects.filter(provider_reference=reference).exists():
                continue
            payment = payment_initiate(
                tenant=tenant,
                package=packages[package_name],
                phone=phone,
                provider_reference=reference,
            )
            if outcome is not None:
                payment_record_callback(
                    provider_reference=reference,
                    succeeded=outcome,
                    amount=payment.amount,
                    raw={"demo": True, "reference": reference, "succeeded": outcome},
                    reason="" if outcome else "Insufficient funds (demo).",
                )
            self.created.append(f"payment {reference}")

    # --- output ---------------------------------------------------------------------------

    def report(self, password: str, url: str, reset: list[str], explicit: bool) -> None:
        if self.created:
            self.stdout.write(f"Demo data: created {len(self.created)} item(s).")
        else:
            self.stdout.write("Demo data already present: nothing created.")
        if reset:
            self.stdout.write(f"Password reset for: {', '.join(reset)}.")
        self.stdout.write(f"\nOpen {url}  (Django admin for system admins: {url}admin/)")
        self.stdout.write(
            f"Captive portal: {url}portal/acme/  (M-Pesa simulator's prompts: {url}dev/mpesa/)"
        )
        self.stdout.write(f"Demo logins, password: {password}")
        if not explicit:
            self.stdout.write(
                "  (users created earlier keep their password; `seed_demo --password P` resets it)"
            )
        for username, what in [
            ("sysadmin", "system admin: Django admin, every tenant"),
            ("acme-admin", "tenant admin of Acme WiFi"),
            ("acme-staff", "staff of Acme WiFi"),
            ("beta-admin", "tenant admin of Beta Net"),
            ("gamma-admin", "tenant admin of Gamma Spots (pending: refused until approved)"),
        ]:
            self.stdout.write(f"  {username:<12} {what}")


def demo_usernames() -> list[str]:
    return ["sysadmin", *(row[0] for row in TENANT_USERS), PENDING_TENANT["admin_username"]]
