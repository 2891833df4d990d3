"""Request ids and tenant ids on log lines; LOG_FORMAT=json writes one JSON object per line."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest

from tests.liveserver import BASE_DIR, database_url_for_servers, manage_check


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "config.requests"]


@pytest.mark.django_db
def test_a_tenant_users_request_line_carries_request_and_tenant_ids(client, tenant_admin, caplog):
    client.force_login(tenant_admin)
    with caplog.at_level(logging.INFO, logger="config.requests"):
        response = client.get("/")
    assert response.status_code == 200
    rid = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    (line,) = request_lines(caplog)
    assert line.request_id == rid
    assert line.tenant_id == tenant_admin.tenant_id
    assert line.user_id == tenant_admin.pk
    assert (line.method, line.path, line.status) == ("GET", "/", 200)
    assert line.view


@pytest.mark.django_db
def test_a_proxys_request_id_is_kept_and_a_forged_one_replaced(client, caplog):
    with caplog.at_level(logging.INFO, logger="config.requests"):
        kept = client.get("/accounts/login/", HTTP_X_REQUEST_ID="lb-7f3a.42")
        forged = client.get("/accounts/login/", HTTP_X_REQUEST_ID='x" level=ERROR\nfake line')
    assert kept["X-Request-ID"] == "lb-7f3a.42"
    assert re.fullmatch(r"[0-9a-f]{32}", forged["X-Request-ID"])
    first, second = request_lines(caplog)
    assert first.request_id == "lb-7f3a.42" and first.tenant_id is None
    assert "\n" not in second.request_id


def test_an_unknown_log_format_is_refused_at_start_up():
    result = manage_check(LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be 'plain' or 'json', not 'xml'." in result.stderr


@pytest.mark.django_db(transaction=True)
def test_json_logs_one_object_per_line_with_ids_on_every_request_line(tenant_admin):
    url = database_url_for_servers()
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from accounts.models import User\n"
        "c = Client()\n"
        f"c.force_login(User.objects.get(pk={tenant_admin.pk}))\n"
        "c.get('/', HTTP_X_REQUEST_ID='req-1')\n"
        "c.get('/', HTTP_X_REQUEST_ID='req-2', HTTP_HOST='evil.example')\n"
    )
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    ok = next(x for x in lines if x["logger"] == "config.requests" and x["request_id"] == "req-1")
    assert ok["tenant_id"] == tenant_admin.tenant_id
    assert ok["status"] == 200 and ok["path"] == "/"
    # A line logged inside the request (Django's refusal of the bad Host) carries its id too.
    refused = next(x for x in lines if x["logger"] == "django.security.DisallowedHost")
    assert refused["request_id"] == "req-2"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, secret",
    [
        ("/payments/stk/callback/{s}/", "cb-secret-0123456789abcdef"),  # forges a paid callback
        ("/portal/status/{s}/", "pay-token-0123456789abcdef"),  # the WiFi password
        ("/portal/acme/pay/{s}/", "pay-token-0123456789abcdef"),
        ("/portal/acme/voucher/{s}/", "vch-token-0123456789abcdef"),
        ("/accounts/set-password/MQ/{s}/", "cxyz12-0123456789abcdef0123456789"),  # a takeover
    ],
)
def test_secrets_in_the_path_are_not_logged(client, caplog, path, secret):
    with caplog.at_level(logging.INFO, logger="config.requests"):
        client.get(path.format(s=secret))
    (line,) = request_lines(caplog)
    assert secret not in line.getMessage() and secret not in line.path
    assert line.path == path.format(s="…")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/payments/stk/callback/{s}",  # no slash: redirected, nothing resolved
        "/payments/stk/callback/{s}/extra/",  # a 404 no pattern matches
    ],
)
def test_a_secret_in_a_path_that_resolves_to_nothing_is_not_logged(client, caplog, path):
    secret = "cb-secret-0123456789abcdef"
    with caplog.at_level(logging.INFO, logger="config.requests"):
        client.get(path.format(s=secret))
    (line,) = request_lines(caplog)
    assert secret not in line.getMessage() and secret not in line.path
    assert line.path == path.format(s="…")


@pytest.mark.django_db
def test_djangos_not_found_line_hides_the_secret_too(client, caplog):
    from config.request_log import ContextFilter

    secret = "cb-secret-0123456789abcdef"
    with caplog.at_level(logging.WARNING, logger="django.request"):
        url = f"/payments/stk/callback/{secret}/"
        assert client.post(url, {}, content_type="application/json").status_code == 404
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    ContextFilter().filter(record)  # on the console handler (settings.LOGGING)
    assert record.getMessage() == "Not Found: /payments/stk/callback/…/"
