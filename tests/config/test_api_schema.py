"""The OpenAPI schema stays accurate: generated without warnings, valid, every endpoint in it."""

import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

#: The public API surface (issue 6). A new endpoint must be added here *and* appear in the schema.
OPERATIONS = {
    ("/api/auth/token/", "post"),
    ("/api/auth/token/refresh/", "post"),
    ("/api/auth/token/verify/", "post"),
    ("/api/tenants/", "get"),
    ("/api/tenants/", "post"),
    ("/api/tenants/{id}/", "get"),
    ("/api/tenants/{id}/", "patch"),
    ("/api/tenants/{id}/approve/", "post"),
    ("/api/tenants/{id}/suspend/", "post"),
    ("/api/tenants/{id}/reactivate/", "post"),
    ("/api/users/", "get"),
    ("/api/users/", "post"),
    ("/api/users/{id}/", "get"),
    ("/api/users/{id}/", "patch"),
    ("/api/users/{id}/", "delete"),
    ("/api/users/{id}/suspend/", "post"),
    ("/api/users/{id}/activate/", "post"),
    ("/api/users/me/", "get"),
    ("/api/users/me/", "patch"),
    ("/api/users/me/password/", "post"),
    ("/api/packages/", "get"),
    ("/api/packages/", "post"),
    ("/api/packages/{id}/", "get"),
    ("/api/packages/{id}/", "patch"),
    ("/api/hotspot-users/", "get"),
    ("/api/hotspot-users/", "post"),
    ("/api/hotspot-users/{id}/", "get"),
    ("/api/hotspot-users/{id}/disable/", "post"),
    ("/api/routers/", "get"),
    ("/api/routers/", "post"),
    ("/api/routers/{id}/", "get"),
    ("/api/routers/{id}/", "patch"),
    ("/api/routers/{id}/", "delete"),
    ("/api/hotspot-sessions/", "get"),
    ("/api/hotspot-sessions/{id}/", "get"),
    ("/api/notifications/", "get"),
    ("/api/notifications/unread-count/", "get"),
    ("/api/notifications/read/", "post"),
    ("/api/notifications/read-all/", "post"),
    ("/api/payments/", "get"),
    ("/api/payments/", "post"),
    ("/api/payments/{id}/", "get"),
    ("/api/payments/callback/", "post"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_generates_without_warnings_and_validates(tmp_path):
    """`spectacular --validate --fail-on-warn` fails on any warning or an invalid document."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3")


def test_schema_has_exactly_the_public_endpoints(schema):
    served = {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    }
    assert served == OPERATIONS


def test_every_operation_documents_its_errors_in_the_one_shape(schema):
    error_ref = "#/components/schemas/Error"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            codes = set(operation["responses"])
            assert codes & {"200", "201", "204"}, (path, method)
            if path.startswith("/api/auth/"):
                assert {"400", "401", "429"} <= codes, (path, method)
            elif path != "/api/payments/callback/":
                assert {"401", "403"} <= codes, (path, method)
            if "{id}" in path:
                assert "404" in codes, (path, method)
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    schema_ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert schema_ref == error_ref, (path, method, code)


def test_callback_is_documented_without_user_auth_and_with_its_signature(schema):
    operation = schema["paths"]["/api/payments/callback/"]["post"]
    assert operation.get("security", []) in ([], [{}])
    header = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in header] == [("X-Signature", True)]
    assert set(operation["responses"]) == {"200", "400", "401", "404", "409", "413", "415", "429"}
    body = schema["components"]["schemas"]["CallbackRequest"]
    assert set(body["required"]) == {"reference", "status", "amount"}
    assert "HMAC-SHA256" in operation["description"]


def test_bearer_and_session_auth_are_both_documented(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["jwtAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"]["in"] == "cookie"


def test_interactive_docs_are_served_without_a_cdn(api_client):
    response = api_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html
    # The init script is a file of its own (no inline script under the CSP); it loads the schema.
    script = api_client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/docs/?script="])
def test_schema_and_docs_are_for_signed_in_users_unless_api_docs_public(
    api_client, settings, staff, path
):
    settings.API_DOCS_PUBLIC = False
    anonymous = api_client.get(path)
    if path == "/api/schema/":
        assert anonymous.status_code == 401
    else:
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    api_client.force_login(staff)
    assert api_client.get(path).status_code == 200
    api_client.logout()
    settings.API_DOCS_PUBLIC = True
    assert api_client.get(path).status_code == 200
