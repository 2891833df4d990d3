"""A NUL byte in the path or the query string is refused with a 400, before any view.

No input of this platform holds one, and PostgreSQL refuses it in any text value: a path
parameter (the portal's tokens, the STK callback secret) or a search term that reached a query
was a 500 with a traceback, for anyone. Form and API fields refuse it themselves (Django's and
DRF's CharField); bodies read raw are checked where they are read (RADIUS, the callbacks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware

MESSAGE = "The address holds a NUL byte (%00)."


def has_nul(request: HttpRequest) -> bool:
    query = request.META.get("QUERY_STRING", "")
    return "\x00" in request.path or b"\x00" in unquote_to_bytes(query)


def refusal(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        from config.api import error_body

        return JsonResponse(error_body("nul_byte", MESSAGE), status=400)
    return HttpResponse(MESSAGE + "\n", status=400, content_type="text/plain; charset=utf-8")


@sync_and_async_middleware
def NulByteMiddleware(get_response: Callable) -> Callable:  # noqa: N802 - a middleware factory
    """Early in MIDDLEWARE (after the request log, so the refusal is logged)."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> Awaitable[HttpResponse]:
            return refusal(request) if has_nul(request) else await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            return refusal(request) if has_nul(request) else get_response(request)

    return middleware
