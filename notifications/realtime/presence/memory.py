"""Process-local presence store (one server process, no Redis)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from notifications.realtime.presence.base import Change, _member_order, presence_ttl


class MemoryPresenceStore:
    """Process-local store (the embedded default): the same semantics as Redis, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, _MemoryScope] = {}

    @classmethod
    def from_settings(cls) -> MemoryPresenceStore:
        return cls()

    def _sweep(self, scope: str, now: float) -> list[int]:
        state = self._scopes.get(scope)
        if state is None:
            return []
        gone = []
        for conn in [c for c, (_, until) in state.entries.items() if until <= now]:
            person = state.drop(conn)
            if person is not None:
                gone.append(person)
        return sorted(gone)

    def _finish(self, scope: str, change: Change) -> Change:
        state = self._scopes.get(scope)
        if state is not None and not state.entries:
            del self._scopes[scope]
            state = None
        change.online = len(state.counts) if state else 0
        return change

    def join(self, scope: str, entries: list[tuple[str, dict[str, Any]]]) -> Change:
        now = time.time()
        with self._lock:
            change = Change(scope, removed=self._sweep(scope, now))
            state = self._scopes.setdefault(scope, _MemoryScope())
            for conn, info in entries:
                person = int(info["id"])
                if conn not in state.entries:
                    state.counts[person] = state.counts.get(person, 0) + 1
                    if state.counts[person] == 1:
                        change.added.append(info)
                state.entries[conn] = (person, now + presence_ttl())
                state.info[person] = info
            return self._finish(scope, change)

    def leave(self, scope: str, conns: Iterable[str]) -> Change:
        now = time.time()
        with self._lock:
            change = Change(scope, removed=self._sweep(scope, now))
            state = self._scopes.get(scope)
            for conn in conns if state else ():
                person = state.drop(conn)
                if person is not None:
                    change.removed.append(person)
            return self._finish(scope, change)

    def sweep(self, scope: str) -> Change:
        return self.leave(scope, [])

    def linger(self, scope: str, conn: str, seconds: float) -> None:
        """Let an entry lapse in `seconds` (instead of its TTL); nothing if it is gone."""
        with self._lock:
            state = self._scopes.get(scope)
            if state is not None and conn in state.entries:
                state.entries[conn] = (state.entries[conn][0], time.time() + seconds)

    def members(self, scope: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._scopes.get(scope)
            live = state.live(time.time()) if state else set()
            return sorted((state.info[p] for p in live if p in state.info), key=_member_order)

    def counts(self, scopes: Iterable[str]) -> dict[str, int]:
        now = time.time()
        with self._lock:
            return {
                scope: len(self._scopes[scope].live(now)) if scope in self._scopes else 0
                for scope in scopes
            }

    def scopes(self) -> list[str]:
        with self._lock:
            return sorted(self._scopes)

    def clear(self) -> None:
        with self._lock:
            self._scopes.clear()


class _MemoryScope:
    """One scope's entries (conn → person, expiry), live entries per person, and infos."""

    __slots__ = ("entries", "counts", "info")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, float]] = {}
        self.counts: dict[int, int] = {}
        self.info: dict[int, dict[str, Any]] = {}

    def drop(self, conn: str) -> int | None:
        """Remove an entry; the person if it was their last one."""
        found = self.entries.pop(conn, None)
        if found is None:
            return None
        person = found[0]
        self.counts[person] -= 1
        if self.counts[person] > 0:
            return None
        del self.counts[person]
        self.info.pop(person, None)
        return person

    def live(self, now: float) -> set[int]:
        return {person for person, until in self.entries.values() if until > now}
