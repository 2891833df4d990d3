"""`manage.py add_router --tenant SLUG --name NAME --address IP --secret SECRET [--coa-port N]`."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from hotspot.services import router_create
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Register a tenant's router (RADIUS client) through the service, for scripts."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, metavar="SLUG")
        parser.add_argument("--name", required=True)
        parser.add_argument("--address", required=True, metavar="IP")
        parser.add_argument("--secret", required=True)
        parser.add_argument("--coa-port", type=int, default=3799, metavar="PORT")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {options['tenant']!r}.")
        try:
            router = router_create(
                tenant=tenant,
                name=options["name"],
                address=options["address"],
                secret=options["secret"],
                coa_port=options["coa_port"],
                by=None,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Router {router.name} ({router.address}) added to {tenant.name}, id {router.pk}."
        )
