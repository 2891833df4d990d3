"""The console log of a refused request: one line, no traceback; a 500 keeps its traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What Django's handler does for a PermissionDenied (a 403) and for a crash (a 500), in a
# process configured like `make run` (local settings, DEBUG on).
SCRIPT = """
import django
django.setup()
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.log import log_response
request = RequestFactory().get("{path}")
try:
    raise {exc}("nope")
except Exception as exc:
    log_response("Refused: %s", request.path, response=HttpResponse(status={status}),
                 request=request, exception=exc)
"""


def console_of(path: str, exc: str, status: int) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(path=path, exc=exc, status=status)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stderr


def test_a_403_is_one_line_without_a_traceback():
    out = console_of("/payments/", "PermissionDenied", 403)
    assert out.count("Refused: /payments/") == 1, out
    assert "Traceback" not in out


@pytest.mark.parametrize("status", [500])
def test_a_500_keeps_its_traceback_printed_once(status):
    out = console_of("/boom/", "RuntimeError", status)
    assert out.count("Refused: /boom/") == 1, out
    assert out.count("Traceback") == 1
