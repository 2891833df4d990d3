"""The process's presence tracker against a store whose calls take time (a slow Redis).

A heartbeat refreshes a snapshot of this process's entries; a tab that closes while that
refresh is in flight must stay gone (before the fix, the refresh re-added it: the person came
back online, announced as `member_added`, until the TTL ran out).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from notifications import presence
from notifications.presence import MemoryPresenceStore, PresenceTracker


class SlowJoins(MemoryPresenceStore):
    """Joins wait for `release` once `hold` is set (a round trip that takes a while)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def join(self, scope, entries):
        if self.hold:
            self.entered.set()
            assert self.release.wait(5)
        return super().join(scope, entries)


class Layer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))


def who(pk: int) -> dict:
    return {"id": pk, "username": f"u{pk}", "name": f"u{pk}", "role": "staff"}


@pytest.fixture
def slow_store(monkeypatch):
    store = SlowJoins()
    monkeypatch.setattr(presence, "_store", store)
    return store


async def test_a_leave_during_a_heartbeat_is_not_undone_by_it(slow_store):
    layer = Layer()
    track = PresenceTracker(layer)
    await track.join("tenant.1", "tab", who(5))
    assert [m["id"] for m in slow_store.members("tenant.1")] == [5]

    slow_store.hold = True
    beat = asyncio.create_task(track.beat())
    assert await asyncio.to_thread(slow_store.entered.wait, 5)  # the refresh is in flight
    leave = asyncio.create_task(track.leave("tenant.1", "tab"))  # the tab closes meanwhile
    await asyncio.sleep(0.05)
    slow_store.release.set()
    await asyncio.wait_for(asyncio.gather(beat, leave), 5)

    assert slow_store.members("tenant.1") == [], "the closed tab came back"
    changes = [m for _, m in layer.sent if m["type"] == "presence.changed"]
    assert [(c["added"], c["removed"]) for c in changes] == [([who(5)], []), ([], [5])]
    await asyncio.sleep(0)
    assert track._locks == {}, "no lock is kept for a scope without entries"
