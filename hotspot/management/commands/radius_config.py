"""`manage.py radius_config --dir DIR --api-url URL [--auth-port 1812] [--acct-port 1813]`."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hotspot.freeradius import RadiusConfig, write_config
from hotspot.radius_cache import cache_secret


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an IP address") from None


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an IP address or network") from None


class Command(BaseCommand):
    help = (
        "Write a complete FreeRADIUS 3 configuration directory that asks this platform "
        "(rlm_rest) and runs as it is: freeradius -f -d DIR."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dir", required=True, help="Directory to write (created).")
        parser.add_argument(
            "--api-url", required=True, help="The platform's base URL, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument("--auth-port", type=_port, default=1812)
        parser.add_argument("--acct-port", type=_port, default=1813)
        parser.add_argument(
            "--cache-port",
            type=_port,
            default=18120,
            help="Port of the cache listener the platform drops answers through "
            "(RADIUS_CACHE_SERVERS); RADIUS_CACHE_TTL=0 writes no cache.",
        )
        parser.add_argument(
            "--cache-address",
            type=_address,
            default="127.0.0.1",
            help="Address the cache listener binds to.",
        )
        parser.add_argument(
            "--cache-client",
            type=_network,
            default="127.0.0.1",
            help="The platform's address (or network): the only source the listener answers.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = urlparse(options["api_url"])
        if url.scheme not in ("http", "https") or not url.netloc:
            raise CommandError("--api-url must be an http(s) URL, e.g. http://127.0.0.1:8000")
        if not settings.RADIUS_API_TOKEN:
            raise CommandError(
                "RADIUS_API_TOKEN is not set: set it (the same value) for the platform and here."
            )
        ports = (options["auth_port"], options["acct_port"], options["cache_port"])
        if len(set(ports)) != 3:
            raise CommandError("--auth-port, --acct-port and --cache-port must differ.")
        directory = Path(options["dir"])
        if directory.exists() and not directory.is_dir():
            raise CommandError(f"{directory} exists and is not a directory.")
        cfg = RadiusConfig(
            api_url=options["api_url"],
            token=settings.RADIUS_API_TOKEN,
            auth_port=options["auth_port"],
            acct_port=options["acct_port"],
            client_lifetime=settings.RADIUS_CLIENT_LIFETIME,
            reject_delay=settings.RADIUS_REJECT_DELAY,
            cache_ttl=settings.RADIUS_CACHE_TTL,
            cache_port=options["cache_port"],
            cache_address=options["cache_address"],
            cache_client=options["cache_client"],
            cache_secret=cache_secret(),
        )
        write_config(cfg, directory)
        self.stdout.write(
            f"FreeRADIUS configuration written to {directory.resolve()}; run: "
            f"freeradius -f -d {directory.resolve()}"
        )
