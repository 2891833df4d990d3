"""The consumers' lean receive loop (realtime.mailbox): every message, in order, on any layer."""

from __future__ import annotations

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from notifications.realtime.layers import LocalFanoutChannelLayer
from notifications.realtime.mailbox import ConsumerLoop

LAYERS = {
    "fanout": "notifications.realtime.layers.LocalFanoutChannelLayer",
    # Channels' own: the loop falls back to a pending receive() task (no receive_into)
    "channels": "channels.layers.InMemoryChannelLayer",
}


class Echo(ConsumerLoop, AsyncWebsocketConsumer):
    groups = ["room"]
    muted = False

    async def receive(self, text_data=None, bytes_data=None):
        self.muted = text_data == "mute"  # like an unsubscribe: filtered when handled
        await self.send(text_data=f"client:{text_data}")

    async def room_event(self, message):
        if not self.muted:
            await self.send(text_data=f"event:{message['n']}")


@pytest.fixture(params=sorted(LAYERS))
def layer(request, settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": LAYERS[request.param]}}
    channel_layers.backends.clear()
    yield get_channel_layer()
    channel_layers.backends.clear()


async def test_client_frames_and_layer_messages_all_arrive_in_order(layer):
    comm = WebsocketCommunicator(Echo.as_asgi(), "/")
    connected, _ = await comm.connect(timeout=3)
    assert connected
    for n in range(3):
        await layer.group_send("room", {"type": "room.event", "n": n})
    assert [await comm.receive_from(timeout=3) for _ in range(3)] == [
        "event:0",
        "event:1",
        "event:2",
    ]
    # A frame sent before an event is handled before it (the event then no longer applies).
    await comm.send_to(text_data="mute")
    await layer.group_send("room", {"type": "room.event", "n": 3})
    assert await comm.receive_from(timeout=3) == "client:mute"
    assert await comm.receive_nothing(0.3)
    await comm.send_to(text_data="unmute")
    assert await comm.receive_from(timeout=3) == "client:unmute"
    await layer.group_send("room", {"type": "room.event", "n": 4})
    assert await comm.receive_from(timeout=3) == "event:4"
    await comm.disconnect()


async def test_the_freezer_freezes_after_a_burst_of_sockets_and_thaws_after_churn():
    import asyncio
    import gc
    import weakref

    from notifications.realtime.mailbox import SocketFreezer

    async def until(condition, what: str) -> None:  # the freezer's timer runs when it can
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    loop = asyncio.get_running_loop()
    freezer = SocketFreezer()
    freezer.enabled, freezer.settle, freezer.min_sockets = True, 0.05, 10
    gc.unfreeze()  # (an earlier test may have frozen the process)
    gc.collect()  # (and left garbage, which a freeze would keep and the thaw free)
    try:
        for _ in range(5):
            freezer.socket_opened(loop)
        await asyncio.sleep(0.15)
        assert gc.get_freeze_count() == 0  # too few sockets: no collection
        for _ in range(20):
            freezer.socket_opened(loop)
        await until(lambda: gc.get_freeze_count() > 0, "the freeze after the burst")
        assert (freezer.frozen, freezer.opened_since) == (25, 0)
        # A closed socket's cycle, frozen: not collected until enough sockets have closed.
        node = SocketFreezer()
        node.cycle = node  # type: ignore[attr-defined]
        ref = weakref.ref(node)
        gc.freeze()
        frozen_before = gc.get_freeze_count()  # what start-up and the burst froze
        del node
        gc.collect()
        assert ref() is not None
        for _ in range(25):
            freezer.socket_closed(loop)
        await until(lambda: (freezer.frozen, freezer.closed_since) == (0, 0), "the thaw")
        # thawed, collected, refrozen: everything that survived is frozen again, the process's
        # start-up freeze included (gc.unfreeze cannot spare it: one permanent generation)
        assert ref() is None
        assert gc.get_freeze_count() > frozen_before - 1000  # (less the garbage collected)
    finally:
        gc.unfreeze()


class ReaderRestarting(LocalFanoutChannelLayer):
    """A fan-out layer whose first `receive_into` declines (as when its Redis reader restarts),
    so the loop waits on a generic `receive()` task; counts the later offers."""

    offers = 0

    def receive_into(self, channel, fut):
        type(self).offers += 1
        if type(self).offers == 1:
            return False
        return super().receive_into(channel, fut)


async def test_a_receive_in_flight_stays_the_only_waiter_so_events_keep_their_order(settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.ReaderRestarting"}}
    channel_layers.backends.clear()
    ReaderRestarting.offers = 0
    try:
        layer = get_channel_layer()
        comm = WebsocketCommunicator(Echo.as_asgi(), "/")
        connected, _ = await comm.connect(timeout=3)
        assert connected
        # A client frame wakes the loop while the receive() task is still waiting: the loop
        # must not add a second waiter beside it (it would take events out of order).
        await comm.send_to(text_data="hello")
        assert await comm.receive_from(timeout=3) == "client:hello"
        assert ReaderRestarting.offers == 1
        for n in range(5):
            await layer.group_send("room", {"type": "room.event", "n": n})
        got = [await comm.receive_from(timeout=3) for _ in range(5)]
        assert got == [f"event:{n}" for n in range(5)]
        await comm.disconnect()
    finally:
        channel_layers.backends.clear()
