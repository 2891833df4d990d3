"""A platform announcement in a real browser: a system admin sends it from /system/announce/ and
the open pages of both tenants' users show it as a toast (text, never HTML)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.live]

WAIT = 30_000


def test_an_announcement_reaches_every_tenants_users(new_page, server):
    acme = new_page("acme-staff")
    beta = new_page("beta-admin")
    admin = new_page("sysadmin")
    admin.goto(f"{server.url}/system/announce/")
    text = "Maintenance at 22:00 <img src=x onerror=alert(1)>"
    admin.fill("#id_title", "Maintenance tonight")
    admin.fill("#id_message", text)
    admin.click("#announce-form [type=submit]")
    admin.wait_for_url("**/system/announce/")
    for page in (acme, beta):
        toast = page.locator('#toast-stack .app-toast[data-event="PlatformAnnouncement"]').first
        toast.wait_for(timeout=WAIT)
        assert "Maintenance tonight" in toast.text_content()
        assert text in toast.text_content() and toast.locator("img").count() == 0
        assert page.dialogs == []
