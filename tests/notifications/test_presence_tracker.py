"""The process's presence tracker against a store whose calls take time (a slow Redis).

A heartbeat refreshes a snapshot of this process's entries; a tab that closes while that
refresh is in flight must stay gone (before the fix, the refresh re-added it: the person came
back online, announced as `member_added`, until the TTL ran out).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest
from channels.layers import get_channel_layer

from notifications.realtime import presence
from notifications.realtime.layers import FanoutChannelLayer, LayerUnavailable
from notifications.realtime.presence import MemoryPresenceStore, PresenceTracker
from tests.liveserver import TcpProxy
from tests.notifications.wsutil import (
    committed_db,
    connect_user,
    event_message,
    group_send,
    still_open,
)


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


@pytest.mark.parametrize("linger", [0.0, 0.2], ids=["leave", "linger"])
async def test_a_leave_during_a_heartbeat_is_not_undone_by_it(slow_store, linger):
    layer = Layer()
    track = PresenceTracker(layer)
    await track.join("tenant.1", "tab", who(5))
    assert [m["id"] for m in slow_store.members("tenant.1")] == [5]

    slow_store.hold = True
    beat = asyncio.create_task(track.beat())
    assert await asyncio.to_thread(slow_store.entered.wait, 5)  # the refresh is in flight
    # the tab closes meanwhile (with `linger`: a page change, gone unless a new page joins)
    leave = asyncio.create_task(track.leave("tenant.1", "tab", linger=linger))
    await asyncio.sleep(0.05)
    slow_store.release.set()
    await asyncio.wait_for(asyncio.gather(beat, leave), 5)
    if linger:
        await asyncio.wait_for(asyncio.gather(*track._sweeps), 5)  # the sweep after the grace

    assert slow_store.members("tenant.1") == [], "the closed tab came back"
    changes = [m for _, m in layer.sent if m["type"] == "presence.changed"]
    assert [(c["added"], c["removed"]) for c in changes] == [([who(5)], []), ([], [5])]
    await asyncio.sleep(0)
    assert track._locks == {}, "no lock is kept for a scope without entries"


# -- the consumer: a socket whose handler fails still leaves --------------------------------


@committed_db
@pytest.mark.usefixtures("fresh_layer")
async def test_a_consumer_that_fails_still_leaves_presence(staff, monkeypatch):
    """A handler that raises (daphne raises on a send to a just-closed socket) ends the consumer
    without `disconnect`; before the fix its entry stayed, refreshed by the heartbeat forever."""
    from notifications.realtime.consumers import NotificationConsumer

    async def boom(self, messages):
        raise RuntimeError("send on a closed protocol")

    monkeypatch.setattr(NotificationConsumer, "notify_events", boom)  # the events' handler
    scope = presence.tenant_scope(staff.tenant_id)
    comm, _ = await connect_user(staff)
    await still_open(comm)
    assert [m["id"] for m in presence.online_members(scope)] == [staff.pk]

    await group_send(scope, event_message(scope, 1))
    with pytest.raises(RuntimeError):
        await comm.wait(timeout=2)
    assert presence.online_members(scope) == [], "the failed socket stayed online"
    assert presence.tracker(get_channel_layer()).local == {}


class CountingJoins(SlowJoins):
    """Also counts store calls (each is a Redis round trip in production)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def join(self, scope, entries):
        self.calls += 1
        return super().join(scope, entries)


async def test_a_connect_storm_is_joined_in_batches_and_announced_once_per_person(monkeypatch):
    store = CountingJoins()
    monkeypatch.setattr(presence, "_store", store)
    layer = Layer()
    tracker = PresenceTracker(layer)
    store.hold = True  # the first call is in flight while 39 more sockets connect
    first = asyncio.create_task(tracker.join("tenant.1", "c0", who(0)))
    await asyncio.to_thread(store.entered.wait, 5)
    rest = [
        asyncio.create_task(tracker.join("tenant.1", f"c{n}", who(n % 10))) for n in range(1, 40)
    ]
    await asyncio.sleep(0.05)
    store.hold = False
    store.release.set()
    changes = await asyncio.gather(first, *rest)
    assert store.calls == 2, "one call for the first socket, one for the 39 that came meanwhile"
    assert changes[-1].online == 10
    added = [
        info["id"]
        for group, message in layer.sent
        if group == "presence.tenant.1"
        for info in message["added"]
    ]
    assert sorted(added) == list(range(10)), "each person announced once"
    assert len(store.members("tenant.1")) == 10
    await presence_cleanup(tracker)


async def test_sockets_arriving_one_by_one_in_a_burst_share_store_calls(monkeypatch):
    """A storm whose sockets come one at a time (each join's store call long done before the
    next socket) still makes one store call per moment, not one per socket."""
    store = CountingJoins()
    monkeypatch.setattr(presence, "_store", store)
    tracker = PresenceTracker(Layer())
    tracker.JOIN_WINDOW = 0.5
    loop = asyncio.get_running_loop()
    await tracker.join("tenant.1", "c0", who(0))  # a quiet moment: at once
    assert store.calls == 1
    started = loop.time()
    joins = []
    for n in range(1, 21):
        joins.append(asyncio.create_task(tracker.join("tenant.1", f"c{n}", who(n))))
        await asyncio.sleep(0.01)
    changes = await asyncio.gather(*joins)
    moments = (loop.time() - started) / tracker.JOIN_WINDOW
    assert store.calls <= 2 + moments, f"{store.calls} store calls for 20 sockets"
    assert changes[-1].online == 21
    assert len(store.members("tenant.1")) == 21, "every socket joined"
    await presence_cleanup(tracker)


async def presence_cleanup(tracker: PresenceTracker) -> None:
    if tracker._task is not None:
        tracker._task.cancel()


class OneScopeFails(MemoryPresenceStore):
    def members(self, scope):
        if scope == "tenant.2":
            raise ConnectionError("the store lost this read")
        return super().members(scope)


async def test_sockets_reading_together_fail_only_for_the_scope_whose_read_failed(monkeypatch):
    """A gap's re-sync reads every watching socket's scope in one hop; one failed read must
    not cost the sockets of the other scopes their lists."""
    store = OneScopeFails()
    store.join("tenant.1", [("c1", who(5))])
    monkeypatch.setattr(presence, "_store", store)
    tracker = PresenceTracker(Layer())
    ok, failed = await asyncio.gather(
        tracker.members("tenant.1"), tracker.members("tenant.2"), return_exceptions=True
    )
    assert [m["id"] for m in ok] == [5]
    assert isinstance(failed, ConnectionError)


# -- announcements the layer cannot take yet (Redis away, or this process resubscribing) ------


class AwayLayer(Layer):
    """Refuses every send while `away`, as the fan-out layer does while Redis is unreachable or
    its subscriptions are being restored."""

    def __init__(self) -> None:
        super().__init__()
        self.away = False

    async def group_send(self, group: str, message: dict) -> None:
        if self.away:
            raise LayerUnavailable("channel layer is resubscribing to Redis; retry later")
        await super().group_send(group, message)


def changes(layer: Layer) -> list[tuple[list[int], list[int], int]]:
    return [
        ([m["id"] for m in msg["added"]], msg["removed"], msg["online"])
        for group, msg in layer.sent
        if group == "presence.tenant.1"
    ]


@pytest.fixture
def memory_store(monkeypatch):
    store = MemoryPresenceStore()
    monkeypatch.setattr(presence, "_store", store)
    return store


async def test_changes_the_layer_refused_reach_the_watchers_once_it_is_back(memory_store, caplog):
    layer = AwayLayer()
    track = PresenceTracker(layer)
    track.HOLD_RETRY = (0.01, 0.05)
    await track.join("tenant.1", "tab-4", who(4))  # announced: the watchers list 4
    layer.away = True
    await track.join("tenant.1", "tab-5", who(5))  # joins return: a socket is not held up
    await track.join("tenant.1", "tab-6", who(6))
    await track.leave("tenant.1", "tab-5")  # came and went while the layer was away
    await track.leave("tenant.1", "tab-4")
    assert changes(layer) == [([4], [], 1)]
    layer.away = False
    await asyncio.wait_for(track._holder, 5)

    # one message, as the store has them: 6 online; 4 and 5 (who came and went) are not;
    # then the system admins' count
    assert changes(layer) == [([4], [], 1), ([6], [4, 5], 1)]
    assert layer.sent[-1] == (
        "presence.system",
        {"type": "presence.count", "tenant": 1, "online": 1},
    )
    held = [r for r in caplog.records if "held until the channel layer" in r.getMessage()]
    assert len(held) == 1 and held[0].exc_info is None  # one line per outage, no traceback

    await track.join("tenant.1", "tab-7", who(7))  # back to sending at once
    assert changes(layer)[-1] == ([7], [], 2)


async def send_held_now(track: PresenceTracker) -> None:
    """Run the holder's round here, at a moment of the test's choosing (its own task waits a
    minute: HOLD_RETRY below), so no test depends on how fast a thread hop is."""
    track._holder.cancel()
    track.HOLD_RETRY = (0, 0)
    track._holder = asyncio.create_task(track._send_held())  # (the one holder: no other starts)
    await asyncio.wait_for(track._holder, 5)


async def test_a_change_made_while_one_is_held_is_sent_after_it_not_before(memory_store):
    layer = AwayLayer()
    track = PresenceTracker(layer)
    track.HOLD_RETRY = (60, 60)
    layer.away = True
    await track.join("tenant.1", "tab-5", who(5))
    layer.away = False  # back, but the held change has not been sent yet
    await track.leave("tenant.1", "tab-5")
    await send_held_now(track)
    # never "5 left" before "5 came" (a watcher would list 5 for good): where 5 stands now
    assert changes(layer) == [([], [5], 0)]
    await track.join("tenant.1", "tab-6", who(6))
    assert changes(layer)[-1] == ([6], [], 1)


class SharedLayer(AwayLayer):
    """One of several processes' layers: what any of them sends, every watcher receives."""

    def __init__(self, sent: list) -> None:
        super().__init__()
        self.sent = sent


def watchers_list(sent: list) -> set[int]:
    """Who a watcher that applied every message in order lists as online."""
    listed: set[int] = set()
    for group, msg in sent:
        if group == "presence.tenant.1":
            listed |= {m["id"] for m in msg["added"]}
            listed -= set(msg["removed"])
    return listed


async def came_here_left_there(a: PresenceTracker, b: PresenceTracker) -> None:
    await a.join("tenant.1", "a1", who(7))  # 7 added: held in A
    await b.join("tenant.1", "b1", who(7))  # no transition (7 is online already)
    await a.leave("tenant.1", "a1")  # none either (7 is still on B)
    await b.leave("tenant.1", "b1")  # 7 removed: B announces it


async def came_here_left_there_came_back_there(a, b) -> None:
    await came_here_left_there(a, b)
    await b.join("tenant.1", "b2", who(7))  # 7 added: B announces it


async def left_here_came_and_went_there_came_back_here(a, b) -> None:
    await a.leave("tenant.1", "a0")  # 7 removed: held in A
    await b.join("tenant.1", "b1", who(7))  # 7 added: B announces it
    await b.leave("tenant.1", "b1")  # 7 removed: B announces it
    await a.join("tenant.1", "a1", who(7))  # 7 added: held in A (A's two net to nothing)


@pytest.mark.parametrize(
    "story",
    [
        came_here_left_there,
        came_here_left_there_came_back_there,
        left_here_came_and_went_there_came_back_here,
    ],
)
async def test_a_held_change_does_not_undo_what_another_process_announced_meanwhile(
    memory_store, story
):
    """Process A cannot send (resubscribing) while person 7 comes and goes on A and on B; B's
    transitions go out at once. What A tells once it can must agree with the store: watchers
    would otherwise list 7 for good after 7 left, or miss 7 while online."""
    sent: list = []
    layer_a, layer_b = SharedLayer(sent), SharedLayer(sent)
    a, b = PresenceTracker(layer_a), PresenceTracker(layer_b)
    a.HOLD_RETRY = (60, 60)
    if story is left_here_came_and_went_there_came_back_here:
        await a.join("tenant.1", "a0", who(7))  # announced: the watchers list 7
    layer_a.away = True
    await story(a, b)
    layer_a.away = False
    await send_held_now(a)

    online = {m["id"] for m in memory_store.members("tenant.1")}
    assert watchers_list(sent) == online == ({7} if "came_back" in story.__name__ else set())
    counts = [m["online"] for group, m in sent if group == "presence.system"]
    assert counts[-1] == len(online)


class HangsOnce(AwayLayer):
    """The first send of "4 left" hangs (a PUBLISH on a connection that stopped answering),
    then fails as unreachable, as the pooled connection's socket timeout does."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = asyncio.Event()
        self.cut = asyncio.Event()

    async def group_send(self, group: str, message: dict) -> None:
        if message.get("removed") == [4] and not self.hanging.is_set():
            self.hanging.set()
            await self.cut.wait()
            raise LayerUnavailable("Redis unreachable: timeout")
        await super().group_send(group, message)


async def its_turn_is_awaited(track: PresenceTracker, scope: str) -> None:
    """Until a second announcement of `scope` (its store call done) waits behind the first."""
    async with asyncio.timeout(5):
        while scope not in track._order or track._order[scope].users < 2:
            await asyncio.sleep(0.01)


async def test_a_later_change_does_not_overtake_a_send_still_in_flight(memory_store):
    """4 leaves; that announcement hangs; 4 comes back. Before, the return was held, sent by
    the holder first, and the hung "4 left" was then held and sent after it: watchers ended
    without 4 while 4 was online. Now the return waits for the send in flight."""
    layer = HangsOnce()
    track = PresenceTracker(layer)
    track.HOLD_RETRY = (60, 60)
    await track.join("tenant.1", "a", who(4))
    leaving = asyncio.create_task(track.leave("tenant.1", "a"))
    await asyncio.wait_for(layer.hanging.wait(), 5)
    returning = asyncio.create_task(track.join("tenant.1", "b", who(4)))
    await its_turn_is_awaited(track, "tenant.1")  # (not sent while 4's leave hangs)
    assert changes(layer) == [([4], [], 1)]
    layer.cut.set()
    await asyncio.wait_for(asyncio.gather(leaving, returning), 5)
    assert changes(layer) == [([4], [], 1)]  # both held: 4 left and came back
    await send_held_now(track)
    assert watchers_list(layer.sent) == {4}
    assert layer.sent[-1] == (
        "presence.system",
        {"type": "presence.count", "tenant": 1, "online": 1},
    )


async def leave_b_cut_short_behind_a(layer: HangsOnce) -> PresenceTracker:
    """4 (tab a) and 5 (tab b) online; a's leave hangs in its send, b's leave is cancelled (the
    server's close timeout) while its announcement waits behind it; then a's send ends."""
    track = PresenceTracker(layer)
    track.HOLD_RETRY = (60, 60)
    await track.join("tenant.1", "a", who(4))
    await track.join("tenant.1", "b", who(5))
    leaving = asyncio.create_task(track.leave("tenant.1", "a"))
    await asyncio.wait_for(layer.hanging.wait(), 5)
    cut_short = asyncio.create_task(track.leave("tenant.1", "b"))
    await its_turn_is_awaited(track, "tenant.1")
    cut_short.cancel()
    layer.cut.set()
    await asyncio.wait_for(leaving, 5)
    with pytest.raises(asyncio.CancelledError):
        await cut_short
    return track


async def test_a_leave_cut_short_while_it_waits_its_turn_is_still_told(memory_store):
    """a's send fails (unreachable): both changes are held, not lost, or the watchers would
    list 5 for good."""
    layer = HangsOnce()
    track = await leave_b_cut_short_behind_a(layer)
    await send_held_now(track)
    assert watchers_list(layer.sent) == set()


class HangsThenSends(HangsOnce):
    """The first send of "4 left" hangs until `cut`, then goes through (a slow PUBLISH)."""

    async def group_send(self, group: str, message: dict) -> None:
        if message.get("removed") == [4] and not self.hanging.is_set():
            self.hanging.set()
            await self.cut.wait()
        await Layer.group_send(self, group, message)


async def test_a_leave_cut_short_that_took_the_last_entry_is_still_told(memory_store):
    """a's send goes through, so only the cut-short change is held, and its leave took the
    process's last entry: the hold must start the holder itself (the heartbeat, which would,
    ends with the last entry), or the watchers list 5 for good."""
    layer = HangsThenSends()
    track = await leave_b_cut_short_behind_a(layer)
    assert not track.local and track._held == {"tenant.1": {5}}
    assert track._holder is not None and not track._holder.done()  # (started by the hold)
    await send_held_now(track)
    assert watchers_list(layer.sent) == set()
    assert changes(layer)[-1] == ([], [5], 0)
    await presence_cleanup(track)


async def test_people_still_here_are_not_told_gone_by_a_store_that_lost_its_entries(memory_store):
    """Redis restarted: the layer was away (a change held) and the store lost every entry.
    The held change is told as the store has it, so this process's entries go back first, or
    5 and 4, both still connected here, would be announced gone until the next heartbeat."""
    layer = AwayLayer()
    track = PresenceTracker(layer)
    track.HOLD_RETRY = (60, 60)
    await track.join("tenant.1", "tab-4", who(4))
    layer.away = True
    await track.join("tenant.1", "tab-5", who(5))  # held
    track.local["tenant.1"]["tab-6"] = who(6)  # (a join whose store call the restart lost)
    memory_store._scopes.clear()  # the restart: every entry gone
    layer.away = False
    await send_held_now(track)
    assert watchers_list(layer.sent) == {4, 5, 6}
    assert changes(layer)[-1] == ([4, 5, 6], [], 3)
    assert {m["id"] for m in memory_store.members("tenant.1")} == {4, 5, 6}
    await presence_cleanup(track)


class HangsNext(AwayLayer):
    """Once `hang` is set, the next send hangs until `cut`, then fails as unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = False
        self.hanging = asyncio.Event()
        self.cut = asyncio.Event()

    async def group_send(self, group: str, message: dict) -> None:
        if self.hang:
            self.hang = False
            self.hanging.set()
            await self.cut.wait()
            raise LayerUnavailable("Redis unreachable: timeout")
        await super().group_send(group, message)


async def test_who_was_held_while_the_holder_retried_is_told_too(memory_store):
    """The holder's send of "4 left" hangs, a leave of 5 is cut short meanwhile (held without
    the scope's turn), then the send fails: the retry tells both, not only the one it had."""
    layer = HangsNext()
    track = PresenceTracker(layer)
    track.HOLD_RETRY = (60, 60)
    await track.join("tenant.1", "a", who(4))
    await track.join("tenant.1", "b", who(5))
    layer.away = True
    await track.leave("tenant.1", "a")  # held: 4
    layer.away, layer.hang = False, True
    track._holder.cancel()
    track.HOLD_RETRY = (0, 0)
    holder = track._holder = asyncio.create_task(track._send_held())
    await asyncio.wait_for(layer.hanging.wait(), 5)
    cut_short = asyncio.create_task(track.leave("tenant.1", "b"))
    await its_turn_is_awaited(track, "tenant.1")
    cut_short.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cut_short
    layer.cut.set()
    await asyncio.wait_for(holder, 5)
    assert watchers_list(layer.sent) == set()
    assert layer.sent[-1][1]["online"] == 0


class Unreadable(MemoryPresenceStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    def members(self, scope):
        if self.down:
            self.refused += 1
            raise ConnectionError("Redis went away")
        return super().members(scope)


async def test_a_held_change_waits_while_the_store_cannot_be_read(monkeypatch):
    """Before it is sent a held change is checked against the store; a store that cannot be
    read is an outage like the layer's: the change stays held and goes once it can be."""
    store = Unreadable()
    monkeypatch.setattr(presence, "_store", store)
    layer = AwayLayer()
    track = PresenceTracker(layer)
    track.HOLD_RETRY = (0.01, 0.01)
    layer.away = True
    await track.join("tenant.1", "tab-5", who(5))
    layer.away, store.down = False, True
    for _ in range(500):
        if store.refused >= 2:
            break
        await asyncio.sleep(0.01)
    assert store.refused >= 2 and changes(layer) == [] and "tenant.1" in track._held
    store.down = False
    await asyncio.wait_for(track._holder, 5)
    assert changes(layer) == [([5], [], 1)]


async def test_stopping_the_trackers_stops_a_holder_that_still_waits_for_the_layer(memory_store):
    layer = AwayLayer()
    layer.away = True
    track = presence.tracker(layer)
    await track.join("tenant.1", "tab-5", who(5))
    holder = track._holder
    assert holder is not None and not holder.done()
    await presence.stop_trackers()
    assert holder.done()


async def test_stopping_the_trackers_while_an_announce_hangs_starts_no_holder(memory_store):
    """A sweep's announcement hangs when the trackers stop: cancelled, it holds its change,
    but no holder task may start on a tracker that is gone (or a loop that is closing)."""
    layer = HangsNext()
    track = presence.tracker(layer)
    await track.join("tenant.1", "tab-5", who(5))
    layer.hang = True
    await track.leave("tenant.1", "tab-5", linger=0.01)  # its sweep announces 5 gone
    await asyncio.wait_for(layer.hanging.wait(), 5)
    await presence.stop_trackers()
    assert track._held == {"tenant.1": {5}}  # (held, as the cancelled announce left it)
    assert track._holder is None


async def test_the_servers_shutdown_stops_the_trackers_before_the_loop_cuts_what_is_left(
    memory_store,
):
    """uvicorn ends the lifespan (config.background stops the loop's work, the trackers too),
    then asyncio cancels every task left: a leave still announcing is cut short there, and its
    hold must start no holder (a task on a closing loop is destroyed pending)."""
    from config import background

    layer = HangsNext()
    track = presence.tracker(layer)
    await track.join("tenant.1", "tab-5", who(5))
    layer.hang = True
    leaving = asyncio.create_task(track.leave("tenant.1", "tab-5"))
    await asyncio.wait_for(layer.hanging.wait(), 5)
    await background._stop()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert track._held == {"tenant.1": {5}} and track._holder is None
    assert track._task is None or track._task.done()  # (its heartbeat stopped)


@pytest.mark.redis
@pytest.mark.timeout(60)
async def test_a_process_cut_off_from_redis_tells_the_other_processes_once_it_is_back(
    redis_url, memory_store
):
    """Two processes' layers on a real Redis: the watcher's connects directly, the other's
    through a relay that is cut. What the cut-off process's people did meanwhile reaches the
    watcher when its layer is back (before, it was dropped with a traceback: the watcher kept
    listing someone who had left)."""
    prefix = f"presence-held-{secrets.token_hex(4)}"
    host = urlsplit(redis_url)
    relay = TcpProxy((host.hostname or "127.0.0.1", host.port or 6379))
    relay.start()
    via_relay = urlunsplit(host._replace(netloc=f"127.0.0.1:{relay.port}"))
    watcher_layer = FanoutChannelLayer(hosts=[redis_url], prefix=prefix)
    cut_layer = FanoutChannelLayer(hosts=[via_relay], prefix=prefix)
    track = PresenceTracker(cut_layer)
    track.HOLD_RETRY = (0.05, 0.2)
    try:
        watcher = await watcher_layer.new_channel()
        await watcher_layer.group_add("presence.tenant.1", watcher)
        own = await cut_layer.new_channel()
        await cut_layer.group_add("tenant.1", own)  # the cut-off process has a socket too
        await track.join("tenant.1", "tab-4", who(4))
        got = await asyncio.wait_for(watcher_layer.receive(watcher), 5)
        assert [m["id"] for m in got["added"]] == [4]

        relay.stop()  # connections cut, new ones refused
        await track.leave("tenant.1", "tab-4")
        await track.join("tenant.1", "tab-6", who(6))
        relay.start()

        got = await asyncio.wait_for(watcher_layer.receive(watcher), 30)
        assert ([m["id"] for m in got["added"]], got["removed"], got["online"]) == ([6], [4], 1)
    finally:
        relay.stop()
        await watcher_layer.close()
        await cut_layer.close()
