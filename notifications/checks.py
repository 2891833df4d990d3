"""Django system checks: a configuration that cannot deliver events is an error at start-up.

They run with every management command (`check`, `migrate`, `runserver`) and when a server
process starts (config/asgi.py runs them on the ASGI lifespan, or on daphne's first connection),
so a typo in a setting, a channel layer that cannot be built, or several server workers without
Redis stop the server instead of showing up later as events that never arrive.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core import checks

from notifications.conf import PREFIX, SETTINGS, convert, raw_value


@checks.register("notifications")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every NOTIFICATIONS_* value converts to its declared type; no unknown names."""
    errors: list[checks.CheckMessage] = []
    for name, declared in SETTINGS.items():
        try:
            convert(name, raw_value(name), declared)
        except ValueError as exc:
            errors.append(
                checks.Error(
                    str(exc),
                    hint="See docs/deployment.md, 'Settings'.",
                    id="notifications.E001",
                )
            )
    errors += _switch_interval_errors()
    known = {PREFIX + name for name in SETTINGS}
    for name in dir(settings):
        if name.startswith(PREFIX) and name not in known:
            errors.append(
                checks.Error(
                    f"{name} is not a notifications setting (a typo?).",
                    hint=f"Known settings: {', '.join(sorted(known))}.",
                    id="notifications.E002",
                )
            )
    return errors


#: the shortest thread switch interval accepted (below it the interpreter mostly switches)
MIN_SWITCH_INTERVAL = 0.0001
#: Above this the event loop waits behind any busy thread for that long (a value meant in ms).
MAX_SWITCH_INTERVAL = 0.05


def _switch_interval_errors() -> list[checks.CheckMessage]:
    """NOTIFICATIONS_SWITCH_INTERVAL_SECONDS is 0 (Python's own) or between 100 µs and 50 ms."""
    try:
        value = convert(
            "SWITCH_INTERVAL_SECONDS",
            raw_value("SWITCH_INTERVAL_SECONDS"),
            SETTINGS["SWITCH_INTERVAL_SECONDS"],
        )
    except ValueError:
        return []  # (E001 already)
    if value > MAX_SWITCH_INTERVAL:
        return [
            checks.Error(
                f"{PREFIX}SWITCH_INTERVAL_SECONDS={value!r}: the unit is seconds; every socket "
                f"of the process would wait up to that long behind a busy thread.",
                hint=f"At most {MAX_SWITCH_INTERVAL} s; the default is 0.001 (1 ms).",
                id="notifications.E003",
            )
        ]
    if 0 < value < MIN_SWITCH_INTERVAL:
        return [
            checks.Error(
                f"{PREFIX}SWITCH_INTERVAL_SECONDS={value!r}: below {MIN_SWITCH_INTERVAL} s the "
                "interpreter spends its time handing the GIL between threads.",
                hint="0 leaves Python's own (5 ms); the default is 0.001.",
                id="notifications.E003",
            )
        ]
    return []


@checks.register("notifications")
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The default channel layer can be built, and reaches every worker when there are several."""
    from channels.layers import get_channel_layer

    from notifications.events.relay import layer_crosses_processes

    if "default" not in getattr(settings, "CHANNEL_LAYERS", {}):
        return [
            checks.Error(
                "CHANNEL_LAYERS has no 'default' layer: no event can reach a socket.",
                id="notifications.E010",
            )
        ]
    try:
        layer = get_channel_layer()
    except Exception as exc:  # a wrong BACKEND path or CONFIG key
        return [
            checks.Error(
                f"The channel layer cannot be built: {exc}",
                hint="Check CHANNEL_LAYERS['default'] (BACKEND and CONFIG).",
                id="notifications.E011",
            )
        ]
    workers = os.environ.get("WEB_CONCURRENCY", "1")
    try:
        several = int(workers) > 1
    except ValueError:
        several = False
    if several and not layer_crosses_processes(layer):
        return [
            checks.Error(
                f"WEB_CONCURRENCY={workers} server workers share a process-local channel layer: "
                "an event published in one worker never reaches the sockets of the others.",
                hint="Set REDIS_URL or REDIS_SENTINELS (a layer through Redis), or run one worker.",
                id="notifications.E012",
            )
        ]
    return []


@checks.register("notifications")
def check_redis(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The Redis settings (URL, TLS files, Sentinel) describe something that can connect."""
    from notifications.realtime.connections import SETTING_NAMES, config_problems

    values = {name: getattr(settings, name, None) for name in SETTING_NAMES}
    values = {name: value for name, value in values.items() if value is not None}
    return [
        checks.Error(
            problem,
            hint="See docs/deployment.md, 'Redis: TLS and Sentinel'.",
            id="notifications.E020",
        )
        for problem in config_problems(values)
    ]
