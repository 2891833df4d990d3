"""Sign out a session whose user has become blocked since signing in (suspended, tenant suspended).

Sign-in checks login_block_reason once; this middleware applies it again on every request, so
a suspension takes effect on the user's next click rather than when their session expires.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from .services import login_block_reason


class BlockedUserLogoutMiddleware:
    """Needs the session, auth and messages middleware before it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            reason = login_block_reason(user)
            if reason:
                logout(request)
                messages.warning(request, f"You have been signed out. {reason}")
        return self.get_response(request)
