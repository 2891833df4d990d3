"""API authentication that applies THE sign-in rule (`login_block_reason`) on every request.

A token stays cryptographically valid until it expires, so a user suspended (or whose tenant was
suspended) after signing in would keep access for up to ACCESS_TOKEN_LIFETIME; these classes
refuse such requests at once, with the same message the sign-in page shows.

Kept apart from accounts/api.py: DRF resolves DEFAULT_AUTHENTICATION_CLASSES while importing
rest_framework.views, so this module must not import views or viewsets.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication

from .services import login_block_reason


def refuse_if_blocked(user: Any) -> None:
    """AuthenticationFailed (401, code `account_blocked`) if `user` may not sign in now."""
    if not user.is_active:
        raise exceptions.AuthenticationFailed("This account is inactive.", code="account_blocked")
    reason = login_block_reason(user)
    if reason is not None:
        raise exceptions.AuthenticationFailed(reason, code="account_blocked")


class BlockAwareJWTAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access token>`; refused as soon as the user becomes blocked."""

    def get_user(self, validated_token: Any) -> Any:
        user = super().get_user(validated_token)
        refuse_if_blocked(user)
        return user


class BlockAwareSessionAuthentication(authentication.SessionAuthentication):
    """The browser's session cookie (CSRF enforced on writes), with the same sign-in rule."""

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is not None:
            refuse_if_blocked(result[0])
        return result
