"""The client's address: THE one rule for throttles, the sign-in lockout and logs.

`X-Forwarded-For` is a list anyone can start: a client sends `X-Forwarded-For: 1.2.3.4` and
nginx's `$proxy_add_x_forwarded_for` appends the real peer, giving "forged, real". Only the hops
our own proxies appended can be believed, so the address is read from the right:

- `NUM_PROXIES = n` (n > 0): n proxies of ours stand in front; the client is the n-th address
  from the right of `X-Forwarded-For` + the peer address (the peer being the last proxy).
- `TRUSTED_PROXIES = ["10.0.0.0/8", ...]`: walking from the right, skip every address in these
  networks; the first one outside them is the client.
- Neither (the default): no proxy is trusted and the header is ignored; the peer is the client.

Anything that is not an IP address where an address should be falls back to the peer address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def _parse(value: str) -> str | None:
    """A normalised IP address, or None. Accepts `[v6]:port` and `v4:port` as proxies write."""
    value = value.strip().strip('"')
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def resolve(peer: str | None, forwarded_for: str | None) -> str:
    """The client address from the TCP peer and the X-Forwarded-For header, per the settings."""
    peer_address = _parse(peer or "") or (peer or "")
    num_proxies = int(getattr(settings, "NUM_PROXIES", 0) or 0)
    trusted = tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ())
    if not forwarded_for or (num_proxies <= 0 and not trusted):
        return peer_address
    chain = [item for item in forwarded_for.split(",") if item.strip()] + [peer_address]
    if num_proxies > 0:
        if len(chain) <= num_proxies:  # fewer hops than proxies: the request bypassed one
            return peer_address
        return _parse(chain[-(num_proxies + 1)]) or peer_address
    networks = _networks(trusted)
    for hop in reversed(chain):
        address = _parse(hop)
        if address is None:
            return peer_address
        if not any(ipaddress.ip_address(address) in net for net in networks):
            return address
    return _parse(chain[0]) or peer_address  # every hop is ours: the first is the client


def client_ip(request: Any) -> str:
    """The client address of a Django HttpRequest or a DRF Request."""
    meta: Mapping[str, str] = request.META
    return resolve(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))


def scope_client_ip(scope: Mapping[str, Any]) -> str:
    """The client address of an ASGI scope (a WebSocket handshake)."""
    client = scope.get("client") or (None, None)
    forwarded = [
        value.decode("latin-1")
        for name, value in _headers(scope.get("headers") or ())
        if name == b"x-forwarded-for"
    ]
    return resolve(client[0], ",".join(forwarded) or None)


def _headers(headers: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    return ((name.lower(), value) for name, value in headers)
