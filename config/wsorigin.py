"""The WebSocket handshake's Origin check: scheme, host and port, against WS_ALLOWED_ORIGINS.

A browser page may open a socket to any site, and the socket rides on that site's cookies; the
Origin header is what tells our pages from someone else's. Channels' AllowedHostsOriginValidator
compares the host only, so a page on another port or scheme of the same host (another app on
the machine, a plain-http page of an https site) was let in. Here an Origin must match exactly:

- `WS_ALLOWED_ORIGINS = ["https://billing.example.com", ...]`: one of these origins.
- empty (the default): the site's own origin, i.e. the handshake's Host (which must be one of
  ALLOWED_HOSTS) with the scheme the page was served over (wss, or https per
  SECURE_PROXY_SSL_HEADER behind a TLS-terminating proxy).

Without an Origin header (non-browser clients: scripts, mobile SDKs, pusher-js on Node) the
handshake goes on; those clients cannot ride on a victim's cookies and must authenticate.
`Origin: null` (sandboxed frames, file: pages) is refused.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.signals import setting_changed
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin such as `https://Example.com:443`, or None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    if parts.username or parts.password or parts.query or parts.fragment:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _own_origin(
    host: str | None, scheme: str | None, forwarded: str | None
) -> tuple[str, str, int] | None:
    """The site's own origin as this handshake reached it, or None if its Host is not allowed."""
    if not host:
        return None
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    secure = scheme == "wss"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header and forwarded is not None:
        secure = forwarded.split(",")[0].strip() == proxy_header[1]
    return normalize_origin(f"{'https' if secure else 'http'}://{host}")


@functools.lru_cache(maxsize=1024)
def _verdict(origin: str, host: str | None, scheme: str | None, forwarded: str | None) -> bool:
    """Whether `origin` may open a socket, from everything the answer depends on.

    Memoised: a burst of handshakes from the site's own pages asks the same question thousands
    of times, and parsing both URLs and validating the host each time was ~5 % of a handshake's
    event-loop CPU (issue 16). Bounded, so a client cycling through invented origins cannot
    grow it; cleared when a setting it reads changes (tests).
    """
    candidate = normalize_origin(origin)
    if candidate is None:  # "null", garbage, other schemes
        return False
    configured = list(getattr(settings, "WS_ALLOWED_ORIGINS", []) or [])
    if configured:
        return candidate in {normalize_origin(item) for item in configured}
    return candidate == _own_origin(host, scheme, forwarded)


_proxy_name: list[bytes | None] = []  # the TLS proxy's header as an ASGI name, once known

_SETTINGS_READ = {"ALLOWED_HOSTS", "DEBUG", "WS_ALLOWED_ORIGINS", "SECURE_PROXY_SSL_HEADER"}


def _forget_verdicts(*, setting: str, **_: Any) -> None:
    if setting in _SETTINGS_READ:
        _verdict.cache_clear()
        _proxy_name.clear()


setting_changed.connect(_forget_verdicts)


def _proxy_header_name() -> bytes | None:
    if not _proxy_name:
        proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        name = (
            proxy_header[0].removeprefix("HTTP_").lower().replace("_", "-")
            if proxy_header
            else None
        )
        _proxy_name.append(name.encode() if name else None)
    return _proxy_name[0]


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the handshake's Origin may open a socket (no Origin: yes). Each header counts
    by its first occurrence."""
    origin = host = forwarded = None
    proxy = _proxy_header_name()
    for key, value in scope.get("headers") or ():
        name = key.lower()
        if name == b"origin":
            origin = value if origin is None else origin
        elif name == b"host":
            host = value if host is None else host
        elif name == proxy:
            forwarded = value if forwarded is None else forwarded
    if origin is None:
        return True

    def text(value: bytes | None) -> str | None:
        return None if value is None else value.decode("latin-1")

    return _verdict(text(origin), text(host), scope.get("scheme"), text(forwarded))


class SiteOriginValidator:
    """ASGI middleware: refuse (HTTP 403 at the handshake) a socket from a foreign origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
