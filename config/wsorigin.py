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


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _own_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    """The site's own origin as this handshake reached it, or None if its Host is not allowed."""
    host = _header(scope, b"host")
    if not host:
        return None
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    secure = scope.get("scheme") == "wss"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, value = proxy_header
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        forwarded = _header(scope, header)
        if forwarded is not None:
            secure = forwarded.split(",")[0].strip() == value
    return normalize_origin(f"{'https' if secure else 'http'}://{host}")


# Verdicts by everything they depend on in the handshake: Origin, Host, scheme and the TLS
# proxy's header (each the first of its name). A burst of handshakes from the site's own pages
# asks the same question thousands of times; parsing both URLs and validating the host each time
# was ~5 % of a handshake's event-loop CPU (issue 16). Settings changes (tests) clear it; the
# bound keeps a client cycling through invented origins from growing it.
_verdicts: dict[tuple[bytes, bytes | None, str | None, bytes | None], bool] = {}
_VERDICTS_MAX = 1024
_proxy_name: list[bytes | None] = []  # the TLS proxy's header as an ASGI name, once known

_SETTINGS_READ = {"ALLOWED_HOSTS", "DEBUG", "WS_ALLOWED_ORIGINS", "SECURE_PROXY_SSL_HEADER"}


def _forget_verdicts(*, setting: str, **_: Any) -> None:
    if setting in _SETTINGS_READ:
        _verdicts.clear()
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
    """Whether the handshake's Origin may open a socket (no Origin: yes)."""
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
    key = (origin, host, scope.get("scheme"), forwarded)
    verdict = _verdicts.get(key)
    if verdict is None:
        verdict = _decide(scope)
        if len(_verdicts) >= _VERDICTS_MAX:
            _verdicts.clear()
        _verdicts[key] = verdict
    return verdict


def _decide(scope: dict[str, Any]) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    candidate = normalize_origin(origin)
    if candidate is None:  # "null", garbage, other schemes
        return False
    configured = list(getattr(settings, "WS_ALLOWED_ORIGINS", []) or [])
    if configured:
        return candidate in {normalize_origin(item) for item in configured}
    return candidate == _own_origin(scope)


class SiteOriginValidator:
    """ASGI middleware: refuse (HTTP 403 at the handshake) a socket from a foreign origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
