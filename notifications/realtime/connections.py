"""Every redis-py connection of the platform, built one way (channels_redis' host specs).

The channel layer (layers.py), the presence store (presence/redis.py) and the Django cache
(config/cache.py) all call this module, so a URL, TLS and Sentinel work the same for each. A
*host spec* is a dict, as ``channels_redis`` takes in ``CONFIG["hosts"]``:

* ``{"address": "redis://host:6379/0", **kwargs}``: one server; ``rediss://`` is TLS, with
  ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname`` in ``kwargs``.
  (A bare URL string means ``{"address": url}``.)
* ``{"master_name": "mymaster", "sentinels": [("host", 26379), ...], "sentinel_kwargs": {...},
  **kwargs}``: whichever server the sentinels name as that master, asked again on every new
  connection, so clients follow a failover; ``kwargs`` (``db``, ``password``, ``ssl=True``,
  ``ssl_*``) apply to the master connections, ``sentinel_kwargs`` to the sentinels (TLS to
  the sentinels themselves: ``ssl=True`` and ``ssl_*`` there).

`host_spec()` builds the spec from the operator's settings (REDIS_URL, REDIS_SENTINELS,
REDIS_SENTINEL_MASTER, REDIS_TLS_*; config/settings/base.py reads them from the environment)
and `config_problems()` names a combination that cannot work (notifications/checks.py).
No Django import: settings modules import this one.

Every connection gets TCP keepalive (a peer that vanished without a FIN, e.g. behind a NAT, is
noticed by the kernel) and a connect timeout; pooled connections are PINGed before reuse after
``health_check_interval`` idle seconds. The layer's subscription has checks of its own.
"""

from __future__ import annotations

import math
import os
import socket
from typing import Any
from urllib.parse import urlsplit

#: The operator's Redis settings (environment variables of the same name), in docs order.
SETTING_NAMES = (
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_SENTINEL_TLS",
    "REDIS_TLS_CA_CERTS",
    "REDIS_TLS_CERTFILE",
    "REDIS_TLS_KEYFILE",
    "REDIS_TLS_CHECK_HOSTNAME",
    "REDIS_HEALTH_CHECK_SECONDS",
)

SCHEMES = ("redis", "rediss", "unix")
TLS_KEYS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname", "ssl_cert_reqs")
DEFAULT_SENTINEL_PORT = 26379
FLAG_VALUES = {"1": True, "true": True, "yes": True, "on": True}
FLAG_VALUES |= {"": False, "0": False, "false": False, "no": False, "off": False}


def _keepalive_options() -> dict[int, int]:
    """Probe an idle connection after 5 s, every 2 s, give up after 3 misses (Linux names)."""
    wanted = {"TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3}
    return {getattr(socket, k): v for k, v in wanted.items() if hasattr(socket, k)}


def connection_defaults() -> dict[str, Any]:
    return {
        "socket_connect_timeout": 2,
        "socket_keepalive": True,
        "socket_keepalive_options": _keepalive_options(),
        "health_check_interval": 10,
    }


def decode_host(host: str | dict[str, Any]) -> dict[str, Any]:
    """A host spec as a fresh dict (a URL string becomes ``{"address": url}``)."""
    if isinstance(host, str):
        return {"address": host}
    if not isinstance(host, dict):
        raise ValueError(f"A Redis host is a URL or a dict, not {type(host).__name__}.")
    return dict(host)


def describe(host: str | dict[str, Any]) -> str:
    """For logs: where a spec points, without credentials."""
    spec = decode_host(host)
    if "master_name" in spec:
        sentinels = ",".join(f"{h}:{p}" for h, p in spec.get("sentinels", ()))
        return f"sentinel master {spec['master_name']} via {sentinels}"
    parts = urlsplit(str(spec.get("address", "")))
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def _pool(host: str | dict[str, Any], *, aio: bool, retries: int, **overrides: Any) -> Any:
    if aio:
        from redis.asyncio import ConnectionPool
        from redis.asyncio.retry import Retry
        from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
    else:
        from redis import ConnectionPool
        from redis.retry import Retry
        from redis.sentinel import Sentinel, SentinelConnectionPool
    from redis.backoff import NoBackoff

    spec = decode_host(host)
    kwargs = {**connection_defaults(), "retry": Retry(NoBackoff(), retries), **overrides}
    master_name = spec.pop("master_name", None)
    if master_name is not None:
        sentinels = [tuple(s) for s in spec.pop("sentinels")]
        sentinel_kwargs = {
            "socket_connect_timeout": kwargs["socket_connect_timeout"],
            "socket_timeout": 2,
            "socket_keepalive": True,
            **(spec.pop("sentinel_kwargs", None) or {}),
        }
        kwargs.update(spec)
        manager = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)
        return SentinelConnectionPool(master_name, manager, **kwargs)
    address = spec.pop("address")
    if urlsplit(address).scheme != "rediss" and any(k in spec for k in TLS_KEYS):
        raise ValueError("TLS options are given for a Redis URL that is not rediss://.")
    kwargs.update(spec)
    if urlsplit(address).scheme == "unix":
        for key in ("socket_keepalive", "socket_keepalive_options"):
            kwargs.pop(key, None)
    return ConnectionPool.from_url(address, **kwargs)


def async_pool(host: str | dict[str, Any], *, retries: int = 1, **overrides: Any) -> Any:
    """A redis.asyncio connection pool for `host` (one per event loop: pools are loop-bound)."""
    return _pool(host, aio=True, retries=retries, **overrides)


def async_client(host: str | dict[str, Any], *, retries: int = 1, **overrides: Any) -> Any:
    """A redis.asyncio client with a pool of its own; `aclose()` closes the pool too."""
    from redis.asyncio import Redis

    return Redis.from_pool(async_pool(host, retries=retries, **overrides))


def sync_client(host: str | dict[str, Any], *, retries: int = 1, **overrides: Any) -> Any:
    """A blocking redis client (thread-safe pool) for `host`."""
    import redis

    return redis.Redis(connection_pool=_pool(host, aio=False, retries=retries, **overrides))


def sync_pool(host: str | dict[str, Any], **overrides: Any) -> Any:
    """A blocking connection pool for `host` (the Django cache's client takes a pool)."""
    return _pool(host, aio=False, retries=1, **overrides)


# --- from the operator's settings ----------------------------------------------------------


def parse_sentinels(value: str | list[str] | tuple) -> list[tuple[str, int]]:
    """``"a:26379,b:26379"`` (or a list of such) → [("a", 26379), ("b", 26379)]."""
    items = value.split(",") if isinstance(value, str) else list(value)
    found = []
    for item in items:
        if isinstance(item, (tuple, list)):
            found.append((str(item[0]), int(item[1])))
            continue
        text = str(item).strip()
        if not text:
            continue
        hostname, sep, port = text.rpartition(":")
        if not sep:
            hostname, port = text, str(DEFAULT_SENTINEL_PORT)
        hostname = hostname.strip("[]")
        if not hostname or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS: {text!r} is not host:port.")
        found.append((hostname, int(port)))
    return found


def parse_flag(name: str, value: Any) -> bool:
    """An on/off setting: a bool, or its environment text (1/true/yes/on, 0/false/no/off)."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    flag = FLAG_VALUES.get(str(value).strip().lower())
    if flag is None:
        raise ValueError(f"{name}={value!r} is not true or false.")
    return flag


def _tls_options(values: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, key in (
        ("REDIS_TLS_CA_CERTS", "ssl_ca_certs"),
        ("REDIS_TLS_CERTFILE", "ssl_certfile"),
        ("REDIS_TLS_KEYFILE", "ssl_keyfile"),
    ):
        if values.get(name):
            options[key] = values[name]
    if not values.get("REDIS_TLS_CHECK_HOSTNAME", True):
        options["ssl_check_hostname"] = False
    return options


def host_spec(values: dict[str, Any]) -> dict[str, Any] | None:
    """The host spec the operator's settings describe (`SETTING_NAMES` → value), else None.

    ``REDIS_SENTINELS`` + ``REDIS_SENTINEL_MASTER``: Sentinel; then ``REDIS_URL`` is optional
    and gives only the master's database, credentials and ``rediss://`` (its host is not used);
    ``REDIS_SENTINEL_TLS`` speaks TLS to the sentinels too (the same ``REDIS_TLS_*`` files).
    Otherwise ``REDIS_URL`` is the server. TLS options apply to ``rediss://`` and TLS sentinels.
    """
    url = values.get("REDIS_URL") or ""
    sentinels = values.get("REDIS_SENTINELS") or []
    tls = _tls_options(values)
    if sentinels:
        spec: dict[str, Any] = {
            "master_name": values.get("REDIS_SENTINEL_MASTER") or "",
            "sentinels": parse_sentinels(sentinels),
        }
        sentinel_kwargs: dict[str, Any] = {}
        if values.get("REDIS_SENTINEL_PASSWORD"):
            sentinel_kwargs["password"] = values["REDIS_SENTINEL_PASSWORD"]
        if parse_flag("REDIS_SENTINEL_TLS", values.get("REDIS_SENTINEL_TLS")):
            sentinel_kwargs.update(ssl=True, **tls)
        if sentinel_kwargs:
            spec["sentinel_kwargs"] = sentinel_kwargs
        if url:
            parts = urlsplit(url)
            path = parts.path.lstrip("/")
            if path.isdigit():
                spec["db"] = int(path)
            if parts.username:
                spec["username"] = parts.username
            if parts.password:
                spec["password"] = parts.password
            if parts.scheme == "rediss":
                spec.update(ssl=True, **tls)
        return spec
    if not url:
        return None
    spec = {"address": url}
    if urlsplit(url).scheme == "rediss":
        spec.update(tls)
    return spec


def config_problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with these settings, one sentence each (empty: fine)."""
    problems = []
    url = values.get("REDIS_URL") or ""
    scheme = urlsplit(url).scheme if url else ""
    sentinels, master = values.get("REDIS_SENTINELS") or [], values.get("REDIS_SENTINEL_MASTER")
    if url and scheme not in SCHEMES:
        problems.append(f"REDIS_URL must start with redis://, rediss:// or unix://, not {scheme}:")
    if sentinels and not master:
        problems.append("REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER (master name) is not.")
    if master and not sentinels:
        problems.append("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS (host:port,...) is not.")
    if sentinels:
        try:
            parse_sentinels(sentinels)
        except ValueError as exc:
            problems.append(str(exc))
    if values.get("REDIS_SENTINEL_PASSWORD") and not sentinels:
        problems.append("REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not.")
    tls_names = ("REDIS_TLS_CA_CERTS", "REDIS_TLS_CERTFILE", "REDIS_TLS_KEYFILE")
    tls_given = [n for n in tls_names if values.get(n)]
    if not values.get("REDIS_TLS_CHECK_HOSTNAME", True):
        tls_given.append("REDIS_TLS_CHECK_HOSTNAME")
    try:
        sentinel_tls = parse_flag("REDIS_SENTINEL_TLS", values.get("REDIS_SENTINEL_TLS"))
    except ValueError as exc:
        problems.append(str(exc))
        sentinel_tls = False
    if sentinel_tls and not sentinels:
        problems.append("REDIS_SENTINEL_TLS is on but REDIS_SENTINELS is not set.")
    if tls_given and scheme != "rediss" and not (sentinel_tls and sentinels):
        problems.append(
            f"{', '.join(tls_given)} set but REDIS_URL is not rediss:// and the sentinels are "
            "not TLS (REDIS_SENTINEL_TLS): the TLS options would be ignored, or refused by "
            "redis-py."
        )
    for name in tls_names:
        path = values.get(name)
        if path and not os.path.isfile(path):
            problems.append(f"{name}={path!r}: no such file.")
    if bool(values.get("REDIS_TLS_CERTFILE")) != bool(values.get("REDIS_TLS_KEYFILE")):
        problems.append("REDIS_TLS_CERTFILE and REDIS_TLS_KEYFILE go together (a client cert).")
    seconds = values.get("REDIS_HEALTH_CHECK_SECONDS", 2)
    try:
        if not 0 < float(seconds) < math.inf:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"REDIS_HEALTH_CHECK_SECONDS={seconds!r} is not a positive number.")
    return problems
