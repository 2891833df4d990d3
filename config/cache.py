"""Django's Redis cache on the platform's Redis connections (URL, TLS or Sentinel).

Django's own RedisCache takes URLs only; this one takes the host spec of settings.REDIS_HOST
(``OPTIONS={"host": ...}``) and builds its pool with notifications.realtime.connections, like
the channel layer and presence, so the throttle counts follow a Sentinel failover too.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from django.utils.functional import cached_property

from notifications.realtime.connections import sync_pool


class RedisCacheClient(DjangoRedisCacheClient):
    """One pool (the spec's server or Sentinel master) for reads and writes."""

    def __init__(self, servers: list[str], host: Any = None, **options: Any) -> None:
        super().__init__(servers, **options)
        self._host = host

    def _get_connection_pool(self, write: bool) -> Any:
        if 0 not in self._pools:
            self._pools[0] = sync_pool(self._host, socket_timeout=5)
        return self._pools[0]


class RedisCache(DjangoRedisCache):
    """``BACKEND: config.cache.RedisCache``, ``OPTIONS: {"host": <host spec>}``."""

    @cached_property
    def _cache(self) -> RedisCacheClient:
        return RedisCacheClient(self._servers, **self._options)
