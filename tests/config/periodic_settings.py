"""Test settings of a server whose only periodic task stalls on demand (test_health.py)."""

from config.settings.test import *  # noqa: F403

PERIODIC_ENABLED = True
PERIODIC_TASKS = {"stall": {"task": "tests.config.periodic_probe.stall", "every": 0.5}}
