"""`manage.py radius_config` writes a directory FreeRADIUS runs as is; routers change live."""

from __future__ import annotations

import subprocess

import pytest
from django.core.management import CommandError, call_command
from pyrad import packet

from hotspot import radius_cache
from tests.conftest import require_program
from tests.factories import HotspotUserFactory, PackageFactory, TenantAdminFactory, TenantFactory
from tests.hotspot.radius_harness import Nas, wait_for


def test_writes_a_config_freeradius_accepts(tmp_path):
    program = require_program("freeradius")
    directory = tmp_path / "raddb"
    call_command(
        "radius_config", "--dir", str(directory), "--api-url", "http://127.0.0.1:9",
        "--auth-port", "21812", "--acct-port", "21813",
    )  # fmt: skip
    conf = (directory / "radiusd.conf").read_text()
    assert "port = 21812" in conf and "port = 21813" in conf
    assert "http://127.0.0.1:9" in conf and "test-radius-token-0123456789" in conf
    assert (
        directory / "radiusd.conf"
    ).stat().st_mode & 0o007 == 0  # the token is not world-readable
    check = subprocess.run(
        [program, "-C", "-d", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("ttl", [0, 45])
def test_the_cache_follows_radius_cache_ttl(tmp_path, settings, ttl):
    """RADIUS_CACHE_TTL=0 writes no cache at all; otherwise its TTL and a listener of its own
    (with a secret that is not the API token) that FreeRADIUS accepts."""
    program = require_program("freeradius")
    settings.RADIUS_CACHE_TTL = ttl
    directory = tmp_path / "raddb"
    call_command(
        "radius_config", "--dir", str(directory), "--api-url", "http://127.0.0.1:9",
        "--auth-port", "21812", "--acct-port", "21813", "--cache-port", "21814",
    )  # fmt: skip
    conf = (directory / "radiusd.conf").read_text()
    if ttl:
        assert f"ttl = {ttl}" in conf and "port = 21814" in conf
        assert radius_cache.cache_secret() in conf
        assert radius_cache.cache_secret() != settings.RADIUS_API_TOKEN
    else:
        assert "rlm_cache" not in conf and "platform_cache" not in conf
    check = subprocess.run(
        [program, "-C", "-d", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-url", "ftp://x"], "http"),
        (["--api-url", "http://x", "--auth-port", "1813", "--acct-port", "1813"], "differ"),
        (["--api-url", "http://x", "--cache-port", "1812"], "differ"),
        (["--api-url", "http://x", "--cache-client", "everyone"], "network"),
    ],
)
def test_bad_arguments(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("radius_config", "--dir", str(tmp_path / "d"), *args)
    assert not (tmp_path / "d").exists()


def test_port_out_of_range(tmp_path):
    with pytest.raises(CommandError, match="between 1 and 65535"):
        call_command("radius_config", "--dir", str(tmp_path), "--api-url", "http://x",
                     "--auth-port", "70000")  # fmt: skip


def test_missing_token(tmp_path, settings):
    settings.RADIUS_API_TOKEN = ""
    with pytest.raises(CommandError, match="RADIUS_API_TOKEN"):
        call_command("radius_config", "--dir", str(tmp_path / "d"), "--api-url", "http://x")


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_router_added_changed_removed_through_the_api_without_restart(
    freeradius, new_address, api_client
):
    from tests.conftest import bearer

    tenant = TenantFactory()
    admin = TenantAdminFactory(tenant=tenant)
    HotspotUserFactory(package=PackageFactory(tenant=tenant), username="carol", password="pw-c")
    api_client.credentials(HTTP_AUTHORIZATION=bearer(admin))
    address = new_address()
    response = api_client.post("/api/routers/", {"name": "New", "address": address, "secret": "k1"})
    assert response.status_code == 201
    router_id = response.json()["id"]
    nas = Nas(freeradius, address, "k1")
    assert nas.login("carol", "pw-c").code == packet.AccessAccept

    # a new secret: the old one stops working once FreeRADIUS's cached client lapses (2 s)
    api_client.patch(f"/api/routers/{router_id}/", {"secret": "k2"})
    nas_new = Nas(freeradius, address, "k2", timeout=1)

    def new_secret_works():
        reply = nas_new.login("carol", "pw-c")
        return reply is not None and reply.code == packet.AccessAccept

    wait_for(new_secret_works, what="the new secret to take effect")

    # removed: FreeRADIUS stops answering that address at all
    assert api_client.delete(f"/api/routers/{router_id}/").status_code == 204
    wait_for(
        lambda: nas_new.login("carol", "pw-c") is None, what="the removed router to be dropped"
    )
