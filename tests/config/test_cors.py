"""CORS for the API (django-cors-headers): only CORS_ALLOWED_ORIGINS, only under /api/."""

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db
APP = "https://app.example.com"


def preflight(path, origin):
    return Client().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_an_allowed_origin_may_call_the_api_with_a_bearer_token(staff):
    response = preflight("/api/auth/token/", APP)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert "authorization" in response["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response  # no cookies cross-site
    actual = Client().get("/api/users/me/", HTTP_ORIGIN=APP)
    assert actual["Access-Control-Allow-Origin"] == APP


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
@pytest.mark.parametrize(
    ("path", "origin"),
    [
        ("/api/auth/token/", "https://evil.example"),
        ("/api/auth/token/", "http://app.example.com"),  # another scheme
        ("/accounts/login/", APP),  # pages are not part of the API
    ],
)
def test_other_origins_and_pages_get_no_cors_headers(path, origin):
    assert "Access-Control-Allow-Origin" not in preflight(path, origin)


def test_by_default_no_origin_is_allowed():
    assert "Access-Control-Allow-Origin" not in preflight("/api/auth/token/", APP)
