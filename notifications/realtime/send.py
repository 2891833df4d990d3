"""The one way code outside a consumer sends a message to a group: `group_send()`.

Callable from sync code (a view, a service's on_commit callback: it blocks until sent) and from
code running on an event loop (Django's `alogout`: it schedules the send instead of blocking
the loop). It never raises: a layer failure is logged, and the state it announces is already
stored (the socket's re-check timer, or its next page load, catches up).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
_pending: set[asyncio.Task] = set()  # keeps fire-and-forget sends alive until done


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send `message` to every socket of `group` through the default layer; never raises."""
    layer = get_channel_layer()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            logger.warning("could not send %s to %s", message.get("type"), group, exc_info=True)
        return
    task = asyncio.ensure_future(layer.group_send(group, message))
    _pending.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("could not send to a group", exc_info=task.exception())
