"""System checks: a bad payments configuration is refused at start-up."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register("payments")
def check_payments(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    simulator = getattr(settings, "MPESA_SIMULATOR", False)
    if simulator and not getattr(settings, "MPESA_SIMULATOR_ALLOWED", False):
        errors.append(
            checks.Error(
                "MPESA_SIMULATOR is on outside local/test settings.",
                hint="The M-Pesa simulator takes no money; it must never run in production. "
                "Unset MPESA_SIMULATOR and point MPESA_API_URL at Daraja.",
                id="payments.E001",
            )
        )
    if "/dev/mpesa" in settings.MPESA_API_URL and not simulator:
        errors.append(
            checks.Error(
                f"MPESA_API_URL ({settings.MPESA_API_URL}) points at the simulator, which is off.",
                hint="Use https://api.safaricom.co.ke (or the sandbox).",
                id="payments.E002",
            )
        )
    if settings.PAYMENT_PROVIDER not in settings.PAYMENT_PROVIDERS:
        errors.append(
            checks.Error(
                f"PAYMENT_PROVIDER {settings.PAYMENT_PROVIDER!r} is not in PAYMENT_PROVIDERS.",
                id="payments.E003",
            )
        )
    try:
        from .crypto import fernet

        fernet()
    except Exception as exc:  # ImproperlyConfigured: empty or not a Fernet key
        errors.append(checks.Error(str(exc), id="payments.E004"))
    return errors


@checks.register("payments", deploy=True)
def check_public_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if not settings.PUBLIC_URL.startswith("https://"):
        return [
            checks.Error(
                "PUBLIC_URL must be the platform's public https:// address.",
                hint="Daraja posts its callbacks to PUBLIC_URL + /payments/stk/callback/...",
                id="payments.E005",
            )
        ]
    return []
