"""/settings/' payment callback secret in a real browser (under the CSP): masked, Reveal shows
it as text, Hide masks it again, Rotate replaces it and says so."""

from __future__ import annotations

import pytest

from tests.browser.live import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_reveal_hide_and_rotate(new_page, server):
    page = new_page("acme-admin")
    page.goto(f"{server.url}/settings/")
    masked = page.text_content("#payment-secret")
    assert masked.startswith("••••") and len(masked) == 16
    page.click("#payment-secret-reveal")
    wait_for(page, "document.getElementById('payment-secret').dataset.masked === '0'")
    secret = page.text_content("#payment-secret")
    assert len(secret) == 64 and secret.endswith(masked[-4:])
    assert page.text_content("#payment-secret-reveal") == "Hide"
    page.click("#payment-secret-reveal")
    assert page.text_content("#payment-secret") == masked
    page.click("#payment-secret-rotate")
    page.wait_for_url("**/settings/**")
    assert page.text_content("#payment-secret") != masked
    assert "new payment secret" in page.text_content("body")
    assert page.dialogs == []
