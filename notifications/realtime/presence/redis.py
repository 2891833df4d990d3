"""Presence in Redis, shared by every server process: atomic Lua scripts per scope."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from notifications.conf import notification_settings as conf
from notifications.realtime import connections
from notifications.realtime.presence.base import Change, _member_order, presence_ttl

# Redis layout per scope S (under the prefix): `S:z` sorted set conn → expiry (unix seconds),
# `S:who` hash conn → person, `S:n` hash person → live entries, `S:info` hash person → JSON.
# `scopes` is the set of scopes with entries (what a system-wide sweep walks).
_SWEEP = """
local gone = {}
-- remove one entry; a person whose last entry it was is gone
local function drop(conn)
  if redis.call('ZREM', KEYS[1], conn) == 0 then return end
  local person = redis.call('HGET', KEYS[2], conn)
  redis.call('HDEL', KEYS[2], conn)
  if person and redis.call('HINCRBY', KEYS[3], person, -1) <= 0 then
    redis.call('HDEL', KEYS[3], person)
    redis.call('HDEL', KEYS[4], person)
    table.insert(gone, person)
  end
end
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do drop(conn) end
"""

_FINISH = """
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  redis.call('SREM', KEYS[5], ARGV[3])
else
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
  redis.call('SADD', KEYS[5], ARGV[3])
end
return {cjson.encode(added), cjson.encode(gone), redis.call('HLEN', KEYS[3])}
"""

# ARGV: now, key ttl, scope, expiry, then (conn, person, info json) triples.
_JOIN = (
    _SWEEP
    + """
local added = {}
for i = 5, #ARGV, 3 do
  local conn, person = ARGV[i], ARGV[i + 1]
  if redis.call('ZADD', KEYS[1], ARGV[4], conn) == 1 then
    redis.call('HSET', KEYS[2], conn, person)
    if redis.call('HINCRBY', KEYS[3], person, 1) == 1 then table.insert(added, ARGV[i + 2]) end
  end
  redis.call('HSET', KEYS[4], person, ARGV[i + 2])
end
"""
    + _FINISH
)

# ARGV: now, key ttl, scope, then conns.
_LEAVE = (
    _SWEEP
    + """
local added = {}
for i = 4, #ARGV do drop(ARGV[i]) end
"""
    + _FINISH
)

# Read-only: the live members' infos (entries not yet expired), without sweeping.
_MEMBERS = """
local conns = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local seen, out = {}, {}
for _, conn in ipairs(conns) do
  local person = redis.call('HGET', KEYS[2], conn)
  if person and not seen[person] then
    seen[person] = true
    local info = redis.call('HGET', KEYS[4], person)
    if info then table.insert(out, info) end
  end
end
return out
"""


class RedisPresenceStore:
    """Shared store for several server processes (Redis): atomic Lua scripts per scope.

    `host`: a Redis URL or a channels_redis host spec (URL, TLS, Sentinel), connected through
    notifications.realtime.connections like the channel layer. Every script touches one
    scope's keys plus the shared `scopes` set, so the store needs one Redis server (or a
    Sentinel-managed master): Redis Cluster is not supported (docs/deployment.md).
    """

    def __init__(self, host: str | dict[str, Any], prefix: str) -> None:
        self.host = connections.decode_host(host)
        self.url = self.host.get("address")
        self.prefix = f"{prefix}:presence:"
        self._client = connections.sync_client(self.host, socket_timeout=5)
        self._join = self._client.register_script(_JOIN)
        self._leave = self._client.register_script(_LEAVE)
        self._members = self._client.register_script(_MEMBERS)

    @classmethod
    def from_settings(cls) -> RedisPresenceStore:
        """settings.REDIS_HOST, keys under NOTIFICATIONS_PRESENCE_PREFIX (else CHANNELS_PREFIX)."""
        prefix = conf.PRESENCE_PREFIX or getattr(settings, "CHANNELS_PREFIX", "hotspot")
        host = getattr(settings, "REDIS_HOST", None) or settings.REDIS_URL
        return cls(host, prefix)

    def _keys(self, scope: str) -> list[str]:
        base = self.prefix + scope
        return [f"{base}:z", f"{base}:who", f"{base}:n", f"{base}:info", self.prefix + "scopes"]

    def _args(self, scope: str) -> list[Any]:
        ttl = presence_ttl()
        return [repr(time.time()), max(1, int(ttl * 4)), scope]

    @staticmethod
    def _change(scope: str, result: list[Any]) -> Change:
        added, gone, online = result
        return Change(
            scope,
            added=[json.loads(info) for info in json.loads(added or b"[]") or []],
            removed=sorted(int(p) for p in json.loads(gone or b"[]") or []),
            online=int(online),
        )

    def join(self, scope: str, entries: list[tuple[str, dict[str, Any]]]) -> Change:
        args = [*self._args(scope), repr(time.time() + presence_ttl())]
        for conn, info in entries:
            args += [conn, str(int(info["id"])), json.dumps(info, separators=(",", ":"))]
        return self._change(scope, self._join(keys=self._keys(scope), args=args))

    def leave(self, scope: str, conns: Iterable[str]) -> Change:
        args = [*self._args(scope), *conns]
        return self._change(scope, self._leave(keys=self._keys(scope), args=args))

    def sweep(self, scope: str) -> Change:
        return self.leave(scope, [])

    def linger(self, scope: str, conn: str, seconds: float) -> None:
        """Let an entry lapse in `seconds` (instead of its TTL); nothing if it is gone."""
        self._client.zadd(self._keys(scope)[0], {conn: time.time() + seconds}, xx=True)

    def members(self, scope: str) -> list[dict[str, Any]]:
        rows = self._members(keys=self._keys(scope), args=[repr(time.time())])
        return sorted((json.loads(row) for row in rows), key=_member_order)

    def counts(self, scopes: Iterable[str]) -> dict[str, int]:
        scopes = list(scopes)
        pipe = self._client.pipeline(transaction=False)
        for scope in scopes:
            self._members(keys=self._keys(scope), args=[repr(time.time())], client=pipe)
        return {scope: len(rows) for scope, rows in zip(scopes, pipe.execute(), strict=True)}

    def scopes(self) -> list[str]:
        return sorted(s.decode() for s in self._client.smembers(self.prefix + "scopes"))

    def clear(self) -> None:
        """Delete this prefix's keys (tests use a prefix of their own)."""
        keys = list(self._client.scan_iter(match=self.prefix + "*", count=500))
        if keys:
            self._client.delete(*keys)
