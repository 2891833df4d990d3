"""Sign-in rules shared by the login forms, simplejwt and the WebSocket handshake."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from .services import SignInLock, login_block_reason, sign_in_check

logger = logging.getLogger("accounts.sign_in")


def user_authentication_rule(user: Any) -> bool:
    """simplejwt's USER_AUTHENTICATION_RULE: no tokens for blocked users or tenants."""
    return user is not None and user.is_active and login_block_reason(user) is None


class SignInGuardBackend(ModelBackend):
    """ModelBackend behind the sign-in lockout (accounts.services.sign_in_check).

    A locked attempt is refused before the password is looked at, so it answers the same whatever
    the password; PermissionDenied makes authenticate() send user_login_failed, which counts it.
    The lock is left on the request (`request.sign_in_lock`) for the form or API to show.
    Every sign-in path (pages, admin, token endpoint) goes through authenticate(), hence here.
    """

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kw: Any
    ) -> Any:
        if username is not None:
            from .receivers import request_address

            address = request_address(request)
            try:
                lock = sign_in_check(username=username, address=address)
            except Exception as exc:  # cache down: refuse, rather than allow unlimited guesses
                logger.error("sign-in refused from %s (cache unavailable): %r", address, exc)
                lock = SignInLock(kind="unavailable", until=timezone.now() + timedelta(seconds=30))
            if lock is not None:
                if request is not None:
                    request.sign_in_lock = lock
                raise PermissionDenied(lock.message)
        return super().authenticate(request, username=username, password=password, **kw)
