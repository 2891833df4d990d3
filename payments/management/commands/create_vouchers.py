"""`manage.py create_vouchers --tenant SLUG --package NAME --count N [--prefix P]`: new codes,
one per line (through the same service as /vouchers/, so the same event is sent)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import DomainError
from hotspot.models import Package
from payments.vouchers import voucher_batch_create
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create a batch of vouchers for a tenant's package and print the codes, one per line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--package", required=True, help="The package's name.")
        parser.add_argument("--count", required=True, type=int, help="How many (1-1000).")
        parser.add_argument("--prefix", default="", help="Optional code prefix (up to 6).")

    def handle(self, *args: Any, tenant: str, package: str, count: int, prefix: str, **kw: Any):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        pkg = Package.objects.filter(tenant=found, name__iexact=package).first()
        if pkg is None:
            names = ", ".join(Package.objects.filter(tenant=found).values_list("name", flat=True))
            raise CommandError(f"{found.name} has no package {package!r} (it has: {names}).")
        try:
            batch = voucher_batch_create(
                tenant=found, package=pkg, count=count, prefix=prefix, by=None
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        for voucher in batch.vouchers.order_by("pk"):
            self.stdout.write(voucher.display_code)
