"""After a lost Redis subscription: replay from the store what a socket missed (both endpoints).

When the layer's subscription dies and comes back (layers.py), events published meanwhile never
reached this process: Redis pub/sub keeps nothing. The layer then tells every local channel
`notify.resubscribed`. `GapReplay` is the consumer mixin that answers it, the same way for
`/ws/notifications/` and the Pusher `/app/<key>`:

1. re-check the socket's rights now (`SocketGuard._guard_check`): a close published while the
   layer was away was lost, and a revoked socket must not be sent a replay;
2. replay, with the `resume` code (notifications/replay.py: the socket's groups that the user
   may still see, current role, commit order, `NOTIFICATIONS_REPLAY_LIMIT`), the events after
   the last one that reached the socket, each once: skipped are ids the process received
   before the gap (the layer's `recent_event_ids`: publishers send out of position order, so
   the window after the last id can hold events already delivered), ids that arrive live from
   the notice on, and, for a lease, live copies of what was replayed (a row claimed before the
   query may still be in flight). Pusher clients do not deduplicate, so the server must;
3. re-sync presence (`_gap_presence`): membership changes announced during the gap were lost.

The notice reaches every socket of the process at once: the re-checks, the replays' reads and
the presence reads of the sockets that ask together go in one thread hop per batch
(notifications.realtime.batch), sockets with the same credentials or position sharing a read.

A gap larger than the replay limit, or an unreadable store, gets `_gap_resync()` instead (the
endpoint's "reload your lists" frame). Not charged to the client's replay budget
(limits.ReplayBudget): the client did not ask for it, the server's gap caused it.

The consumer calls `_gap_begin()` once the socket joins its first event group (where a replay
would start), `_gap_seen(id)` for each live event (True: already replayed, skip it),
`_gap_stop()` when it closes, and implements the hooks below.
"""

from __future__ import annotations

import asyncio
import logging

from notifications.conf import notification_settings as conf
from notifications.realtime.batch import thread_batch
from notifications.replay import Replay, missed_events, newest_event_id

logger = logging.getLogger(__name__)


def _newest_event_ids(asked: list[None]) -> list[int | None]:
    """`newest_event_id` for sockets that have all joined their groups (one query)."""
    newest = newest_event_id()
    return [newest] * len(asked)


GapAsk = tuple[int, int, tuple[str, ...], str]  # (user id, last id, channels, socket id)


def _missed_many(asks: list[GapAsk]) -> list[Replay]:
    """`missed_events` for the sockets replaying a gap together (one thread hop, not one each).

    Sockets of one person that saw the same last event on the same groups (a person's tabs)
    share one read; each then drops the events that excluded it (toOthers), as `exclude` would.
    A failed read resyncs its own sockets only.
    """
    shared: dict[tuple[int, int, tuple[str, ...]], Replay] = {}
    out: list[Replay] = []
    for user_id, since, channels, socket_id in asks:
        key = (user_id, since, channels)
        if key not in shared:
            try:
                shared[key] = missed_events(user_id=user_id, last_id=since, channels=list(channels))
            except Exception:
                logger.warning("replay after a lost subscription failed", exc_info=True)
                shared[key] = Replay(resync=True)
        found = shared[key]
        if socket_id not in found.excluded:
            out.append(found)
            continue
        keep = [i for i, by in enumerate(found.excluded) if by != socket_id]
        out.append(
            Replay(
                frames=[found.frames[i] for i in keep],
                ids=[found.ids[i] for i in keep],
                excluded=[found.excluded[i] for i in keep],
            )
        )
    return out


class GapReplay:
    """Consumer mixin: `notify.resubscribed` → re-check, replay the gap, re-sync presence."""

    _closed: bool
    socket_id: str
    _gap_started = False
    _seen_up_to: int | None = None  # the last event that reached this socket (or a safe start)
    _gap_live: set[int] | None = None  # ids that came live during a gap replay
    _gap_task: asyncio.Task | None = None
    _gap_next: int | None | bool = False  # a further notice's start (False: none)
    _replayed: set[int] | None = None  # ids a gap replay sent, not to be sent again
    _replayed_until = 0.0

    # -- hooks -----------------------------------------------------------------------------

    def _gap_user_id(self) -> int | None:
        """Whose rights the replay follows (None: nobody, no replay)."""
        raise NotImplementedError

    def _gap_channels(self) -> list[str]:
        """The layer groups whose events the socket is delivered now."""
        raise NotImplementedError

    async def _gap_send(self, text: str) -> None:
        """Send one replayed event (the stored `/ws/notifications/` frame)."""
        raise NotImplementedError

    async def _gap_resync(self) -> None:
        """Too much or nothing to replay from: tell the client to reload."""
        raise NotImplementedError

    async def _gap_presence(self) -> None:
        """Re-send what presence changes the gap may have swallowed (default: nothing)."""

    # -- calls from the consumer -----------------------------------------------------------

    async def _gap_begin(self) -> None:
        """From now on the socket can miss events: note where a replay would start.

        The last event this process received before the socket joined (or, in a process that
        has seen none, the newest one published), so nothing sent after the join can be missed.
        """
        if self._gap_started:
            return
        self._gap_started = True
        layer = self.channel_layer  # type: ignore[attr-defined]
        self._seen_up_to = getattr(layer, "last_event_id", None)
        if self._seen_up_to is None and getattr(layer, "is_redis", False):
            # (none published yet: every stored event is one this socket may miss; sockets
            # connecting together share the query: notifications.realtime.batch)
            self._seen_up_to = await thread_batch(_newest_event_ids).ask(None) or 0

    def _gap_seen(self, event_id: int) -> bool:
        """A live event reached the socket; True when a gap replay already sent it."""
        self._seen_up_to = event_id
        if self._gap_live is not None:
            self._gap_live.add(event_id)
        if self._replayed is not None:
            if asyncio.get_running_loop().time() > self._replayed_until:
                self._replayed = None
            elif event_id in self._replayed:
                return True
        return False

    def _gap_stop(self) -> None:
        task = self._gap_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def notify_resubscribed(self, message: dict) -> None:
        """The layer's Redis subscription was lost and is back (module docstring).

        One replay at a time: a notice during one is kept (the first start point) and run next.
        """
        if self._closed:
            return
        if self._gap_task is not None and not self._gap_task.done():
            if self._gap_next is False:
                self._gap_next = self._seen_up_to
            return
        self._gap_next = self._seen_up_to
        # From now: an event that comes live before the task runs must not be replayed too.
        self._gap_live = set()
        self._gap_task = asyncio.create_task(self._gap_loop())

    # -- internals -------------------------------------------------------------------------

    async def _gap_loop(self) -> None:
        try:
            while self._gap_next is not False and not self._closed:
                since, self._gap_next = self._gap_next, False
                if not await self._guard_check():  # type: ignore[attr-defined]
                    return  # revoked while the layer was away: closed now
                if self._gap_started:
                    await self._gap_replay(since)
                if not self._closed:
                    try:
                        await self._gap_presence()
                    except Exception:  # presence is best effort
                        logger.warning("presence re-sync after a gap failed", exc_info=True)
        finally:
            self._gap_live = None

    async def _gap_replay(self, since: int | None) -> None:
        if since is None:  # nothing to start from (no event stored yet?): reload the lists
            await self._gap_resync()
            return
        user_id, channels = self._gap_user_id(), self._gap_channels()
        if user_id is None or not channels:
            return
        try:
            ask = (user_id, since, tuple(sorted(set(channels))), self.socket_id)
            result = await thread_batch(_missed_many).ask(ask)
        except Exception:  # the database is away too: the client reloads its lists instead
            logger.warning("replay after a lost subscription failed", exc_info=True)
            result = Replay(resync=True)
        if result.resync:
            await self._gap_resync()
            return
        live = self._gap_live or set()
        received = getattr(self.channel_layer, "recent_event_ids", {})  # type: ignore[attr-defined]
        replayed = self._replayed if self._replayed is not None else set()
        sent = 0
        for event_id, text in zip(result.ids, result.frames, strict=True):
            if self._closed:
                break
            if event_id in live or event_id in replayed or event_id in received:
                continue
            replayed.add(event_id)
            await self._gap_send(text)
            sent += 1
        self.meter.gap_replayed(sent)  # type: ignore[attr-defined]
        if self._closed:
            return
        # A row claimed before the query may still be in flight and arrive live: not twice.
        self._replayed = replayed
        self._replayed_until = (
            asyncio.get_running_loop().time() + conf.LEASE_SECONDS + conf.SEND_TIMEOUT_SECONDS
        )
