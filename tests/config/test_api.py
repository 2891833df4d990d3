"""The API's shared behaviour: one error shape everywhere, JSON 404s, throttles."""

import json
import uuid

import pytest
from django.conf import settings
from django.test import override_settings

from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_a_json_404(api_client):
    response = api_client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "No API endpoint at this address."}
    }


def test_api_root_lists_the_resources(api_as, system_admin):
    response = api_as("system_admin").get("/api/")
    assert response.status_code == 200
    assert set(response.json()) == {
        "tenants",
        "users",
        "packages",
        "hotspot-users",
        "routers",
        "hotspot-sessions",
        "payments",
        "notifications",
    }


def test_validation_errors_have_the_one_shape(api_as, tenant_admin):
    response = api_as("tenant_admin").post("/api/packages/", {"price": "abc"})
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "invalid"
    assert body["error"]["message"] == "Some fields are invalid; see `fields`."
    assert body["error"]["fields"] == {
        "name": ["This field is required."],
        "price": ["A valid number is required."],
        "duration_minutes": ["This field is required."],
    }


def test_malformed_json_is_a_400_parse_error(api_as, tenant_admin):
    response = api_as("tenant_admin").generic(
        "POST", "/api/packages/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize("url", ["/api/auth/token/", "/api/packages/"])
def test_absurdly_nested_json_is_a_400_not_a_crash(api_as, tenant_admin, url):
    response = api_as("tenant_admin").generic(
        "POST", url, "[" * 100_000, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_non_object_body_is_a_non_field_error(api_as, tenant_admin):
    response = api_as("tenant_admin").post(
        "/api/packages/", data=json.dumps([1, 2]), content_type="application/json"
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["non_field_errors"]


def test_method_not_allowed_has_the_one_shape(api_as, tenant, tenant_admin):
    response = api_as("tenant_admin").delete(f"/api/tenants/{tenant.pk}/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_forbidden_has_the_one_shape(api_as, staff):
    response = api_as("staff").post("/api/tenants/", {})
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "permission_denied", "message": "Only system admins can do this."}
    }


@pytest.fixture
def small_rates():
    """Throttle rates small enough to hit, counted under a fresh cache prefix (a clean counter
    without clearing the cache, which on Redis would flush the whole database)."""
    rates = {"write": "3/min", "auth": "2/min", "payment_callback": "2/min"}
    fresh = {**settings.CACHES["default"], "KEY_PREFIX": f"throttle-{uuid.uuid4().hex[:8]}"}
    with override_settings(
        CACHES={"default": fresh},
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates},
    ):
        yield


def test_writes_are_throttled_per_user_but_reads_are_not(small_rates, api_as, tenant_admin, staff):
    admin = api_as("tenant_admin")
    for _ in range(3):
        assert admin.patch("/api/users/me/", {"first_name": "A"}).status_code == 200
    refused = admin.patch("/api/users/me/", {"first_name": "B"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    tenant_admin.refresh_from_db()
    assert tenant_admin.first_name == "A"
    assert admin.get("/api/users/me/").status_code == 200  # reads still flow
    assert api_as("staff").patch("/api/users/me/", {"first_name": "C"}).status_code == 200


def test_token_endpoints_are_throttled_per_address(small_rates, api_client, staff):
    credentials = {"username": "acme-staff", "password": DEFAULT_PASSWORD}
    assert api_client.post("/api/auth/token/", credentials).status_code == 200
    assert api_client.post("/api/auth/token/", {**credentials, "password": "x"}).status_code == 401
    refused = api_client.post("/api/auth/token/", credentials)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    other_address = api_client.post("/api/auth/token/", credentials, REMOTE_ADDR="10.0.0.9")
    assert other_address.status_code == 200


def test_callback_is_throttled_per_address(small_rates, api_client):
    for _ in range(2):
        assert api_client.post("/api/payments/callback/", {}).status_code == 401
    assert api_client.post("/api/payments/callback/", {}).status_code == 429


def test_unknown_path_with_odd_characters_is_still_a_json_404(api_client):
    response = api_client.get("/api/payments/%C2%B7%0A%12/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_posting_to_an_unknown_path_is_a_json_404_not_a_csrf_page(staff):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)
    response = client.post("/api/tenants/0.5/approve/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_malformed_multipart_body_is_refused_in_the_one_shape(api_as, system_admin):
    response = api_as("system_admin").generic(
        "POST",
        "/api/tenants/",
        "--b83e\r\n__proto__--b83e--\r\n",
        content_type="multipart/form-data; boundary=b83e",
    )
    assert response.status_code in {400, 415}
    assert set(response.json()) == {"error"}


def _protected_operations():
    from tests.config.test_api_schema import OPERATIONS

    public = ("/api/auth/", "/api/payments/callback/")
    return sorted(op for op in OPERATIONS if not op[0].startswith(public))


@pytest.mark.parametrize(("path", "method"), _protected_operations())
def test_every_protected_endpoint_refuses_anonymous_callers(api_client, tenant, path, method):
    response = getattr(api_client, method)(path.replace("{id}", str(tenant.pk)), {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_throttle_counts_are_shared_through_redis_when_configured(settings, redis_url):
    """Several server processes share one count: the cache is Redis whenever REDIS_URL is."""
    import importlib
    import os

    from config.settings import base

    old = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = redis_url
    try:
        configured = importlib.reload(base).CACHES["default"]
    finally:
        if old is None:
            os.environ.pop("REDIS_URL")
        else:
            os.environ["REDIS_URL"] = old
        importlib.reload(base)
    # Django's Redis cache on the platform's connection builder (URL, TLS or Sentinel alike)
    assert configured["BACKEND"] == "config.cache.RedisCache"
    assert configured["OPTIONS"]["host"] == {"address": redis_url}
    from config.cache import RedisCache

    cache = RedisCache(configured["LOCATION"], {**configured, "KEY_PREFIX": "test-shared"})
    cache.set("throttle-probe", 1, 30)
    assert cache.incr("throttle-probe") == 2  # one count in Redis, whichever process asks
    cache.delete("throttle-probe")
