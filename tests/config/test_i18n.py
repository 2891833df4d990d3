"""The shipped languages: pages in the visitor's language, the switch, the compiled catalogs.

English is the source; Swahili and French translate every string.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import require_program
from tests.factories import PackageFactory, TenantFactory

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("sw", "fr")


def html_lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


@pytest.mark.django_db
def test_the_sign_in_page_speaks_the_browsers_language(client):
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="sw-KE,sw;q=0.9,en;q=0.5")
    html = page.content.decode()
    assert page["Content-Language"] == "sw" and html_lang(html) == "sw"
    assert "<title>Ingia · Hotspot Billing</title>" in html
    assert "Jina la mtumiaji" in html and "Sajili biashara yako" in html
    french = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    assert html_lang(french.content.decode()) == "fr"
    assert "Se connecter" in french.content.decode()
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de-DE")  # not shipped
    assert html_lang(english.content.decode()) == "en"
    assert "Sign in" in english.content.decode()


@pytest.mark.django_db
def test_an_anonymous_visitor_switches_language_on_the_sign_in_page(client):
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    switch = re.search(r'<form action="(/i18n/setlang/)"[^>]*id="language-switch"', html)
    assert switch and 'name="language" value="sw"' in html
    response = client.post(
        switch.group(1), {"language": "sw", "next": "/accounts/login/"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    again = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert html_lang(again) == "sw" and "Ingia" in again


@pytest.mark.django_db
def test_the_captive_portal_in_swahili(client):
    """Customers on phones: the buy page, its package words and the switch."""
    tenant = TenantFactory(slug="duka", name="Duka WiFi")
    PackageFactory(tenant=tenant, name="Saa Moja", duration_minutes=60, data_limit_mb=None)
    client.post("/i18n/setlang/", {"language": "sw", "next": "/portal/duka/"})
    html = client.get("/portal/duka/").content.decode()
    assert html_lang(html) == "sw"
    assert "Chagua kifurushi" in html and "Lipa kwa M-Pesa" in html and "Una vocha?" in html
    assert "saa 1 · Data bila kikomo" in html
    assert 'id="language-switch"' in html
    missing = client.get("/portal/nowhere/").content.decode()
    assert "Hakuna hotspot kwenye anwani hii." in missing


def test_every_language_is_wired_in_settings():
    assert settings.LANGUAGE_CODE == "en"
    assert [code for code, _ in settings.LANGUAGES] == ["en", *LOCALES]
    assert "django.middleware.locale.LocaleMiddleware" in settings.MIDDLEWARE


def _entries(po: Path) -> list[tuple[str, str]]:
    """(msgid, msgstr) of every entry (plural forms: the first), with msgfmt's own parser."""
    out = subprocess.run(
        ["msgattrib", "--no-wrap", "--no-obsolete", str(po)], capture_output=True, text=True
    ).stdout
    entry = r'^msgid "(.*)"\n(?:msgid_plural ".*"\n)?msgstr(?:\[0\])? "(.*)"$'
    pairs = re.findall(entry, out, re.M)
    return [(i, s) for i, s in pairs if i]


@pytest.mark.parametrize("language", LOCALES)
def test_the_committed_mo_files_are_compiled_from_the_po_files(language, tmp_path):
    """A .po edited without `compilemessages` (or a placeholder a translation lost) fails."""
    require_program("msgfmt")
    po = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(po)], check=True)
    committed = po.with_suffix(".mo").read_bytes()
    assert fresh.read_bytes() == committed, (
        f"locale/{language}/LC_MESSAGES/django.mo is stale: run "
        ".venv/bin/python manage.py compilemessages --ignore='.venv*' -l sw -l fr and commit it"
    )


@pytest.mark.parametrize("language", LOCALES)
def test_every_string_is_translated(language):
    require_program("msgattrib")
    po = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
    untranslated = [msgid for msgid, msgstr in _entries(po) if not msgstr]
    assert not untranslated, f"{len(untranslated)} untranslated: {untranslated[:5]}"
    assert "#, fuzzy" not in po.read_text(encoding="utf-8")  # msgfmt drops fuzzy entries
