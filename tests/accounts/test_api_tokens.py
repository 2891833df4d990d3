"""JWT life cycle: obtain, use, refresh, verify, expiry — and blocked users get no tokens."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from tenants.models import Tenant
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def obtain(client, username, password=DEFAULT_PASSWORD):
    return client.post("/api/auth/token/", {"username": username, "password": password})


def me(client, access):
    return client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {access}")


def error(response):
    return response.json()["error"]


def test_obtain_use_refresh_verify(api_client, staff):
    tokens = obtain(api_client, "acme-staff")
    assert tokens.status_code == 200
    access, refresh = tokens.json()["access"], tokens.json()["refresh"]
    assert me(api_client, access).json()["username"] == "acme-staff"

    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": refresh})
    assert refreshed.status_code == 200
    assert me(api_client, refreshed.json()["access"]).status_code == 200

    assert api_client.post("/api/auth/token/verify/", {"token": access}).status_code == 200
    assert api_client.post("/api/auth/token/verify/", {"token": refresh}).status_code == 200


def test_wrong_password_or_unknown_user_gets_one_generic_answer(api_client, staff):
    for username, password in [("acme-staff", "wrong"), ("nobody", "wrong")]:
        response = obtain(api_client, username, password)
        assert response.status_code == 401
        assert error(response) == {
            "code": "invalid_credentials",
            "message": "Wrong username or password.",
        }


def test_missing_credentials_are_field_errors(api_client):
    response = api_client.post("/api/auth/token/", {"username": "acme-staff"})
    assert response.status_code == 400
    assert error(response)["fields"] == {"password": ["This field is required."]}


def test_suspended_user_cannot_obtain_but_learns_why_only_with_the_right_password(
    api_client, staff
):
    staff.status = User.Status.SUSPENDED
    staff.suspension_reason = "Audit"
    staff.save()
    assert error(obtain(api_client, "acme-staff", "wrong"))["code"] == "invalid_credentials"
    response = obtain(api_client, "acme-staff")
    assert response.status_code == 401
    assert error(response) == {
        "code": "account_blocked",
        "message": "Your account has been suspended. Contact your administrator. Reason: Audit",
    }


@pytest.mark.parametrize(
    ("status", "says"),
    [(Tenant.Status.SUSPENDED, "suspended"), (Tenant.Status.PENDING, "awaiting approval")],
)
def test_users_of_blocked_tenants_cannot_obtain(api_client, tenant, tenant_admin, status, says):
    tenant.status = status
    tenant.suspension_reason = "Unpaid" if status == Tenant.Status.SUSPENDED else ""
    tenant.save()
    response = obtain(api_client, "acme-admin")
    assert response.status_code == 401
    assert error(response)["code"] == "account_blocked"
    assert says in error(response)["message"]


def test_user_blocked_after_sign_in_can_neither_refresh_nor_use_the_access_token(
    api_client, staff, tenant
):
    tokens = obtain(api_client, "acme-staff").json()
    tenant.status = Tenant.Status.SUSPENDED
    tenant.suspension_reason = "Unpaid"
    tenant.save()

    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 401
    assert error(refreshed) == {
        "code": "account_blocked",
        "message": "Your organisation's account is suspended. Contact support. Reason: Unpaid",
    }
    used = me(api_client, tokens["access"])
    assert used.status_code == 401
    assert error(used)["code"] == "account_blocked"

    tenant.status = Tenant.Status.ACTIVE
    tenant.suspension_reason = ""
    tenant.save()
    again = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert again.status_code == 200


def test_suspended_user_cannot_refresh(api_client, staff):
    refresh = obtain(api_client, "acme-staff").json()["refresh"]
    staff.status = User.Status.SUSPENDED
    staff.suspension_reason = "Audit"
    staff.save()
    response = api_client.post("/api/auth/token/refresh/", {"refresh": refresh})
    assert response.status_code == 401
    assert "suspended" in error(response)["message"]


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_repeated_wrong_passwords_lock_this_address(api_client, staff):
    for _ in range(2):
        assert obtain(api_client, "acme-staff", "wrong").status_code == 401
    assert obtain(api_client, "acme-staff", "wrong").status_code == 429
    response = obtain(api_client, "acme-staff")
    assert response.status_code == 429
    assert error(response)["code"] == "sign_in_locked"
    assert "Too many failed sign-in attempts" in error(response)["message"]
    assert User.objects.get(pk=staff.pk).status == User.Status.ACTIVE  # not suspended


def test_expired_access_token_is_refused(api_client, staff):
    token = AccessToken.for_user(staff)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    response = me(api_client, token)
    assert response.status_code == 401
    assert error(response)["code"] == "token_not_valid"
    verify = api_client.post("/api/auth/token/verify/", {"token": str(token)})
    assert verify.status_code == 401


def test_expired_refresh_token_is_refused(api_client, staff):
    refresh = RefreshToken.for_user(staff)
    refresh.set_exp(from_time=timezone.now() - timedelta(days=30))
    response = api_client.post("/api/auth/token/refresh/", {"refresh": str(refresh)})
    assert response.status_code == 401
    assert error(response)["code"] == "token_not_valid"


def test_tampered_or_wrong_type_tokens_are_refused(api_client, staff):
    tokens = obtain(api_client, "acme-staff").json()
    tampered = tokens["access"][:-4] + ("AAAA" if not tokens["access"].endswith("AAAA") else "BBBB")
    assert me(api_client, tampered).status_code == 401
    assert api_client.post("/api/auth/token/verify/", {"token": tampered}).status_code == 401
    # An access token is not a refresh token, and a refresh token does not authenticate requests.
    wrong_type = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["access"]})
    assert wrong_type.status_code == 401
    assert me(api_client, tokens["refresh"]).status_code == 401
    garbage = api_client.get("/api/users/me/", HTTP_AUTHORIZATION="Bearer a b")
    assert garbage.status_code == 401


def test_refresh_token_of_a_deleted_user_is_refused_cleanly(api_client, tenant):
    from tests.factories import TenantStaffFactory

    gone = TenantStaffFactory(tenant=tenant, username="acme-gone")
    refresh = str(RefreshToken.for_user(gone))
    gone.delete()
    response = api_client.post("/api/auth/token/refresh/", {"refresh": refresh})
    assert response.status_code == 401
    assert error(response)["code"] == "user_not_found"
