"""`X-Socket-ID` → `notifications.context.current_socket_id` for the events a request causes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from notifications.context import clean_socket_id, current_socket_id

logger = logging.getLogger(__name__)

HEADER = "X-Socket-ID"
FIELD = "socket_id"  # the same, as a hidden form field (plain form posts)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class SocketIdMiddleware:
    """Puts a well-formed `X-Socket-ID` header in a contextvar for the request's duration.

    A malformed value is ignored (logged at debug): the change still happens and every socket,
    including the sender's, gets the event. Works for sync and async views alike.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _socket_id(self, request: HttpRequest) -> str | None:
        raw = request.headers.get(HEADER)
        if raw is None and request.method == "POST" and request.content_type in FORM_TYPES:
            # A plain HTML form cannot set a header: the page's JS adds a hidden field.
            # The body is read (and kept) first: parsing a multipart body straight from the
            # stream would leave nothing for the views that read the raw body (the payment
            # callbacks, the Pusher publish API), a 500 for anyone posting one.
            try:
                request.body  # noqa: B018 - read for its side effect (Django caches it)
            except RequestDataTooBig:
                return None  # the view answers it
            raw = request.POST.get(FIELD)
        socket_id = clean_socket_id(raw)
        if raw and socket_id is None:
            logger.debug("ignoring malformed %s header %r", HEADER, raw[:40])
        return socket_id

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        token = current_socket_id.set(self._socket_id(request))
        try:
            return self.get_response(request)
        finally:
            current_socket_id.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        token = current_socket_id.set(self._socket_id(request))
        try:
            return await self.get_response(request)
        finally:
            current_socket_id.reset(token)
