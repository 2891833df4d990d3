"""System checks of the deployment's own settings (registered by accounts' AppConfig).

Published development keys (config/settings/devkeys.py: the SECRET_KEY and Pusher app of
`make run` and the tests) sign sessions, JWTs and private-channel grants: with one of them in
production anyone can sign `private-tenant.<id>` or forge a session. Refused as an error both
when production settings run (any `manage.py` command, `make serve`) and by `check --deploy`
on any settings.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from config.settings.devkeys import PUBLISHED


def _published_keys_in_use() -> list[str]:
    return [name for name, values in PUBLISHED.items() if getattr(settings, name, None) in values]


def _errors(names: list[str], check_id: str) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"{name} is a published development value (config/settings/devkeys.py).",
            hint=f"Set {name} in the environment to a value of your own, kept secret.",
            id=check_id,
        )
        for name in names
    ]


@checks.register(checks.Tags.security)
def published_keys_in_production(app_configs: Any = None, **kwargs: Any) -> list:
    if not getattr(settings, "PRODUCTION", False):
        return []
    return _errors(_published_keys_in_use(), "hotspot.E001")


@checks.register(checks.Tags.security, deploy=True)
def published_keys_on_deploy(app_configs: Any = None, **kwargs: Any) -> list:
    if getattr(settings, "PRODUCTION", False):
        return []  # already reported by published_keys_in_production
    return _errors(_published_keys_in_use(), "hotspot.E002")


@checks.register()
def currency_and_time_zone(app_configs: Any = None, **kwargs: Any) -> list:
    """CURRENCY and TIME_ZONE are new tenants' defaults: a typo would fail every sign-up."""
    from config.money import CURRENCIES, time_zone_names

    errors = []
    if settings.CURRENCY not in CURRENCIES:
        errors.append(
            checks.Error(
                f"CURRENCY={settings.CURRENCY!r} is not a currency the platform bills in.",
                hint=f"Use one of {', '.join(CURRENCIES)} (config/money.py).",
                id="hotspot.E003",
            )
        )
    if settings.TIME_ZONE not in time_zone_names():
        errors.append(
            checks.Error(
                f"TIME_ZONE={settings.TIME_ZONE!r} is not an IANA time zone name.",
                hint="e.g. Africa/Nairobi, Africa/Lagos, UTC.",
                id="hotspot.E004",
            )
        )
    return errors


#: longest RADIUS_CACHE_DROP_WAIT: a change's request waits this long at most after its commit
RADIUS_DROP_WAIT_MAX = 2.0


@checks.register()
def radius_cache_timing(app_configs: Any = None, **kwargs: Any) -> list:
    """The cache drops' timings (hotspot/radius_cache.py): a zero timeout or no try would send
    no drop at all, a negative wait none confirmed, a long one holds every change's request, a
    queue of none discards every drop."""
    errors = []
    if settings.RADIUS_CACHE_TIMEOUT <= 0 or settings.RADIUS_CACHE_RETRIES < 1:
        errors.append(
            checks.Error(
                f"RADIUS_CACHE_TIMEOUT={settings.RADIUS_CACHE_TIMEOUT!r} and "
                f"RADIUS_CACHE_RETRIES={settings.RADIUS_CACHE_RETRIES!r}: a drop is never sent.",
                hint="A timeout above 0 seconds (default 0.5) and at least 1 try (default 3).",
                id="hotspot.E005",
            )
        )
    if not 0 <= settings.RADIUS_CACHE_DROP_WAIT <= RADIUS_DROP_WAIT_MAX:
        errors.append(
            checks.Error(
                f"RADIUS_CACHE_DROP_WAIT={settings.RADIUS_CACHE_DROP_WAIT!r} is not between 0 "
                f"and {RADIUS_DROP_WAIT_MAX:g} seconds.",
                hint="Default 0.25: a healthy FreeRADIUS on loopback confirms in milliseconds.",
                id="hotspot.E006",
            )
        )
    if settings.RADIUS_CACHE_QUEUE_MAX < 1:
        errors.append(
            checks.Error(
                f"RADIUS_CACHE_QUEUE_MAX={settings.RADIUS_CACHE_QUEUE_MAX!r}: every drop would "
                "be discarded.",
                hint="At least 1 drop per cache listener (default 10000).",
                id="hotspot.E007",
            )
        )
    return errors


#: gc.set_threshold takes C ints.
GC_THRESHOLD_MAX = 2**31 - 1


@checks.register()
def gc_thresholds(app_configs: Any = None, **kwargs: Any) -> list:
    """GC_THRESHOLD_YOUNG=0 would switch the cyclic GC off in every server (CPython's meaning of
    a zero threshold): cycles would never be freed; above a C int, gc.set_threshold raises at
    the server's start."""
    if 1 <= settings.GC_THRESHOLD_YOUNG <= GC_THRESHOLD_MAX:
        return []
    why = "the cyclic GC would never run" if settings.GC_THRESHOLD_YOUNG < 1 else "too large"
    return [
        checks.Error(
            f"GC_THRESHOLD_YOUNG={settings.GC_THRESHOLD_YOUNG!r}: {why}.",
            hint=f"1 to {GC_THRESHOLD_MAX} (default 100000; docs/deployment.md); "
            "ASGI_TUNE_GC=0 keeps CPython's defaults.",
            id="hotspot.E008",
        )
    ]
