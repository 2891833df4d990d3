"""Typed values from the environment, for settings and for the few modules read before them
(config/asgi.py). A bad number stops the start naming its variable, not with a bare ValueError
from deep in an import."""

from __future__ import annotations

import math
import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool = False) -> bool:
    """A switch from the environment (empty: `default`); anything but 1/true/yes/on or
    0/false/no/off stops the start with its name, rather than quietly meaning off."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a switch: use 1/true/yes/on or 0/false/no/off "
        f"(default {'on' if default else 'off'})."
    )


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_number(name: str, default: str, kind: type[int] | type[float] = float) -> int | float:
    """A number from the environment (empty: `default`); a value that is none, or not finite,
    stops the start with its name (inf or nan would stall a timer or a sender)."""
    value = os.environ.get(name, "").strip() or default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number):
        what = "a whole number" if kind is int else "a finite number"
        raise ImproperlyConfigured(f"{name}={value!r} is not {what} (default {default}).")
    return number
