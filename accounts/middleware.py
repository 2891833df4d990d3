"""Sign out a session whose user has become blocked since signing in (suspended, tenant suspended).

Sign-in checks login_block_reason once; this middleware applies it again on every request, so
a suspension takes effect on the user's next click rather than when their session expires.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _

from .services import login_block_reason


class BlockedUserLogoutMiddleware:
    """Needs the session, auth and messages middleware before it.

    The API (/api/) is left alone: it answers a blocked session itself with a JSON
    401 `account_blocked`, which a flash message and a silent logout would turn into an
    unexplained `not_authenticated`. The session ends on the user's next page instead.
    """

    exempt_prefixes: tuple[str, ...] = ("/api/",)

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self.exempt_prefixes)
        ):
            reason = login_block_reason(user)
            if reason:
                logout(request)
                messages.warning(
                    request, _("You have been signed out. {reason}").format(reason=reason)
                )
        return self.get_response(request)


class UserLanguageMiddleware:
    """Activate the language a signed-in user chose on their profile (User.language).

    Runs after LocaleMiddleware (which picked the set_language cookie or the browser's
    Accept-Language) and AuthenticationMiddleware; an empty choice keeps that pick, so a user
    who never chose follows their browser.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None else ""
        if language and user.is_authenticated and language != request.LANGUAGE_CODE:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)
