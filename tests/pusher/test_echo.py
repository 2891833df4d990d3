"""The real laravel-echo + pusher-js (npm, pinned in tests/pusher/js) against a live daphne."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.live import PASSWORD, ROOT, LiveServer
from tests.conftest import require_program

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node() -> str:
    node = require_program("node")
    if not (JS / "node_modules" / "laravel-echo").is_dir():
        npm = require_program("npm")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300)
    return node


@pytest.fixture(scope="module")
def server():
    live = LiveServer()
    live.env["PUSHER_CLIENT_EVENTS"] = "1"  # Echo's whisper
    try:
        live.prepare()
        live.start()
        yield live
    finally:
        live.close()


def test_echo_clients_subscribe_receive_and_are_isolated(node, server):
    fire = [sys.executable, str(ROOT / "manage.py"), "fire_event", "SystemNotification"]
    fire += ["--tenant", "acme", "--title", "Hello Echo"]
    result = subprocess.run(
        [node, str(JS / "echo_scenarios.mjs")],
        cwd=JS,
        env={
            **server.env,
            "BASE": server.url,
            "PUSHER_KEY": "hotspot-local-key",  # config/settings/local.py's dev default
            "PASSWORD": PASSWORD,
            "FIRE": json.dumps(fire),
        },
        capture_output=True,
        text=True,
        timeout=90,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    got = json.loads(lines[-1][len("RESULT ") :])

    # Echo subscribed to private-tenant.<id> through /broadcasting/auth with a bearer token.
    assert got["subscribeA1"] == {"ok": True}
    assert got["subscribeA2"] == {"ok": True}
    assert got["subscribeB1"] == {"ok": True}
    assert got["socketIdForm"] is True
    # Another tenant's channel: a subscription error (403 from the auth endpoint).
    assert got["forbidden"] == {"ok": False, "status": 403}
    # fire_event's event arrives as .SystemNotification with the /ws/notifications/ frame.
    assert got["firedReceived"] is True
    assert got["fired"] == [["SystemNotification", f"tenant.{acme_id(server)}", "Hello Echo"]]
    assert got["betaReceived"] == 0
    # toOthers: X-Socket-ID = Echo's socket id; the other acme socket gets it, the writer not.
    assert got["toOthersA2"] is True
    assert got["toOthersA1"] == 0
    assert got["toOthersB1"] == 0
    assert got["userCreatedData"] and got["userCreatedData"][0]["username"].startswith("echo-")

    # Presence: Echo.join lists the members (one per person), joining / leaving fire.
    assert got["joinP1"] == {"ok": True}
    assert got["hereP1"] == ["acme-admin"]
    assert got["joinP2"] == {"ok": True}
    assert got["hereP2"] == ["acme-admin", "acme-staff"]
    assert got["joiningP1"] == ["acme-staff"]
    assert got["hereP3"] == ["acme-admin", "acme-staff"], "a second socket: the same member"
    assert got["forbiddenPresence"] == {"ok": False, "status": 403}
    # Whisper: to the others of the channel (p1 and p3), not back to p2, not to beta.
    assert got["whisperP1"] is True
    assert got["whispers"] == {"p1": [{"name": "acme-staff"}], "p2": 0, "p3": 1, "pb": 0}
    assert got["leavingP1"] == ["acme-staff"]
    assert got["joiningP1After"] == ["acme-staff"], "p3 (acme-admin again) was no new member"
    assert got["leavingP1After"] == ["acme-staff"], "acme-admin is still online on p1"
    assert got["leavingPB"] == 0


def acme_id(server: LiveServer) -> int:
    out = server.manage(
        "shell",
        "-c",
        "from tenants.models import Tenant; print(Tenant.objects.get(slug='acme').pk)",
    )
    return int(out.strip().splitlines()[-1])
