"""Request ids, tenant ids and one log line per request (the access log; uvicorn's is off).

Each logged request is also counted in the Prometheus metrics (config/metrics.py).

`RequestLogMiddleware` gives every request an id (the client's or proxy's `X-Request-ID` when it
is a sane token, else a new one), echoes it in the response's `X-Request-ID`, and logs one line
on `config.requests` with method, path, status, duration, view, user and tenant. `ContextFilter`
(on the console handler) stamps `request_id` and `tenant_id` on every record logged while the
request runs, so an error deep in a view carries them too. With `LOG_FORMAT=json` each line is a
JSON object (python-json-logger) with those fields; the default is plain text.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.decorators import sync_and_async_middleware
from django.utils.functional import empty

logger = logging.getLogger("config.requests")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
tenant_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("tenant_id", default=None)
# The live pipeline's ids: a socket's (set in its consumer's task, so every line its handlers
# and their database threads log carries it) and the event a publisher is sending.
socket_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("socket_id", default=None)
event_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("event_id", default=None)

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REQUEST_ID_HEADER = "X-Request-ID"


#: URL parameters that are credentials: a payment's callback secret (whoever has it can report
#: the payment paid), the portal tokens (they show the WiFi password) and the set-password token
SECRET_URL_KWARGS = frozenset({"secret", "token"})


def _secret_kwargs(match: ResolverMatch | None) -> set[str]:
    return {
        str(value)
        for name, value in (match.kwargs if match else {}).items()
        if name in SECRET_URL_KWARGS and value
    }


def _nearest_match(path: str) -> ResolverMatch | None:
    """For a path that resolved to nothing (a missing slash redirected, extra segments 404'd):
    the URL it was meant for, found in the URLconf itself (the path with a slash, then each
    shorter prefix), so its credentials are hidden like a resolved request's."""
    parts = path.rstrip("/").split("/")
    for end in range(len(parts), 1, -1):
        try:
            return resolve("/".join(parts[:end]) + "/")
        except Resolver404:
            continue
    return None


def logged_path(request: HttpRequest) -> str:
    """The request's path as logs show it: the segments that are credentials become "…"."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    hidden = _secret_kwargs(match) if match else _secret_kwargs(_nearest_match(path))
    if not hidden:
        return path
    return "/".join("…" if part in hidden else part for part in path.split("/"))


class ContextFilter(logging.Filter):
    """Adds `request_id`, `tenant_id`, `socket_id` and `event_id` (None where they do not apply)
    to every record, and hides credentials in the path of Django's "Not Found: <path>" lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT:
            if not hasattr(record, name):
                setattr(record, name, var.get())
        request = getattr(record, "request", None)
        if isinstance(request, HttpRequest) and isinstance(record.args, tuple) and record.args:
            path = request.path
            record.args = tuple(logged_path(request) if arg == path else arg for arg in record.args)
        return True


_CONTEXT = (
    ("request_id", request_id),
    ("tenant_id", tenant_id),
    ("socket_id", socket_id),
    ("event_id", event_id),
)


def _incoming_id(request: HttpRequest) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def _user(request: HttpRequest) -> Any:
    """The request's user if something already loaded it (never a query just for the log)."""
    user = request.__dict__.get("user")
    wrapped = getattr(user, "_wrapped", None)
    if wrapped is empty:  # AuthenticationMiddleware's lazy user, never evaluated
        return None
    return wrapped if wrapped is not None else user


def _finish(request: HttpRequest, response: HttpResponse, rid: str, started: float) -> None:
    user = _user(request)
    uid = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    tid = getattr(user, "tenant_id", None) if uid is not None else None
    if tid is not None:
        tenant_id.set(tid)
    response[REQUEST_ID_HEADER] = rid
    match = getattr(request, "resolver_match", None)
    status = response.status_code
    seconds = time.monotonic() - started
    duration = round(seconds * 1000, 1)
    path = logged_path(request)
    from config.metrics import observe_request  # (not at import: settings import this module)

    observe_request(match.view_name if match else None, request.method or "", status, seconds)
    logger.log(
        logging.WARNING if status >= 500 else logging.INFO,
        "%s %s %s %.1fms",
        request.method,
        path,
        status,
        duration,
        extra={
            "method": request.method,
            "path": path,
            "status": status,
            "duration_ms": duration,
            "view": match.view_name if match else None,
            "user_id": uid,
            "tenant_id": tid,
        },
    )


@sync_and_async_middleware
def RequestLogMiddleware(get_response):  # noqa: N802 - a middleware factory, named like a class
    """Early in MIDDLEWARE (so every later line carries the id); logs when the response is ready."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            rid, started = _incoming_id(request), time.monotonic()
            rid_token, tid_token = request_id.set(rid), tenant_id.set(None)
            try:
                response = await get_response(request)
                _finish(request, response, rid, started)
                return response
            finally:
                request_id.reset(rid_token)
                tenant_id.reset(tid_token)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            rid, started = _incoming_id(request), time.monotonic()
            rid_token, tid_token = request_id.set(rid), tenant_id.set(None)
            try:
                response = get_response(request)
                _finish(request, response, rid, started)
                return response
            finally:
                request_id.reset(rid_token)
                tenant_id.reset(tid_token)

    return middleware


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """settings.LOGGING for LOG_FORMAT `plain` (default) or `json`."""
    if log_format not in {"plain", "json"}:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {log_format!r}.")
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant_id)s "
            "%(socket_id)s %(event_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "config.request_log.ContextFilter"},
            "client_errors": {"()": "config.logging.ClientErrorWithoutTraceback"},
        },
        "formatters": {log_format: formatters[log_format]},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context", "client_errors"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Replaces Django's own "django" handlers (a second console one in DEBUG, which
            # printed every record twice): its records go to the root's console only.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.channels.server": {"level": "WARNING"},
        },
    }
