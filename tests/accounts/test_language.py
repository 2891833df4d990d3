"""The language a signed-in person picks on /accounts/profile/ (User.language)."""

from __future__ import annotations

import re

import pytest

from accounts import services
from tests.factories import TenantAdminFactory

pytestmark = pytest.mark.django_db

PROFILE = "/accounts/profile/"


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def profile_post(client, user, **changes):
    data = {"first_name": user.first_name, "last_name": user.last_name, "email": user.email}
    data.update({"phone": "", "language": "", **changes})
    return client.post(PROFILE, data, HTTP_ACCEPT_LANGUAGE="en")


def test_a_user_picks_swahili_and_every_page_follows_whatever_the_browser_says(client):
    user = TenantAdminFactory()
    client.force_login(user)
    form = client.get(PROFILE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<select name="language"' in form and '<option value="sw">Kiswahili</option>' in form

    response = profile_post(client, user, language="sw")
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.language == "sw"

    page = client.get(PROFILE, HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert html_lang(page) == "sw"
    assert "Wasifu wako umehifadhiwa." in html  # the flash is already in the new language
    assert '<option value="sw" selected>' in html

    dashboard = client.get("/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    text = dashboard.content.decode()
    assert html_lang(dashboard) == "sw" and dashboard["Content-Language"] == "sw"
    assert "Walio mtandaoni sasa" in text and "Shughuli za karibuni" in text
    assert "Malipo ya leo" in text and ">Dashibodi</a>" in text
    # the page's own script words and the toasts' titles come in the same language
    assert '"Payment Received"' not in text and '"Malipo Yamepokelewa"' in text
    assert '"stopped": "Taarifa za moja kwa moja zimesimama"' in text


def test_no_choice_follows_the_browser(client):
    user = TenantAdminFactory(language="")
    client.force_login(user)
    assert html_lang(client.get("/", HTTP_ACCEPT_LANGUAGE="fr")) == "fr"
    assert html_lang(client.get("/", HTTP_ACCEPT_LANGUAGE="en")) == "en"
    profile_post(client, user, language="sw")
    profile_post(client, user, language="")  # back to "as my browser says"
    user.refresh_from_db()
    assert user.language == ""
    assert html_lang(client.get("/", HTTP_ACCEPT_LANGUAGE="fr")) == "fr"


def test_an_unknown_language_is_refused(client):
    user = TenantAdminFactory()
    client.force_login(user)
    response = profile_post(client, user, language="xx")
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.language == ""
    with pytest.raises(services.ValidationError):
        services.user_set_language(user=user, language="klingon")


def test_choosing_a_language_tells_nobody_else(client, django_capture_on_commit_callbacks):
    """A personal preference: no UserUpdated toast to the tenant's admins."""
    from notifications.models import StoredEvent

    user = TenantAdminFactory()
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        profile_post(client, user, language="fr")
    assert not StoredEvent.objects.filter(name="UserUpdated").exists()
