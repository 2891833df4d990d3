"""The live pipeline's ids on its log lines: a socket's id and tenant on what its task logs, the
event's id on what its publisher logs while sending it (LOG_FORMAT=json writes them as fields)."""

from __future__ import annotations

import json
import logging

import pytest

from config.request_log import ContextFilter, logging_config
from notifications.events import catalog, relay
from notifications.events.broadcast import broadcast
from notifications.models import StoredEvent
from notifications.realtime.layers import FanoutChannelLayer
from tests.notifications.wsutil import committed_db, connect_user

pytestmark = [committed_db, pytest.mark.usefixtures("fresh_layer")]


class Records(logging.Handler):
    """The records a console handler would write, with the console's context filter."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records():
    handler = Records()
    for name in ("notifications", "config"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        old = logger.level
        logger.setLevel(logging.DEBUG)
    yield handler
    for name in ("notifications", "config"):
        logging.getLogger(name).removeHandler(handler)
        logging.getLogger(name).setLevel(old)


async def test_a_sockets_lines_carry_its_socket_id_and_tenant(records, staff):
    comm, welcome = await connect_user(staff)
    await comm.disconnect()
    opened = [r for r in records.records if r.getMessage().startswith("socket opened")]
    assert opened, [r.getMessage() for r in records.records]
    assert opened[0].socket_id == welcome["socket_id"]
    assert opened[0].tenant_id == staff.tenant_id


async def test_a_publishers_lines_carry_the_event_id(records, staff, own_redis):
    """Redis really going away under the production layer: the warning names the event."""
    from channels.db import database_sync_to_async

    @database_sync_to_async
    def stored() -> StoredEvent:
        event = broadcast(catalog.SystemNotification.create(tenant=staff.tenant, message="x"))
        row = StoredEvent.objects.prefetch_related("targets").get(pk=event.id)
        row.publish_attempts = 1
        return row

    row = await stored()
    layer = FanoutChannelLayer(hosts=[own_redis.url], prefix="log-context")
    try:
        assert await relay.send_events([row], layer=layer) == ([row.id], [])  # Redis is up
        assert not [r for r in records.records if "unavailable for event" in r.getMessage()]
        own_redis.stop()
        sent, failed = await relay.send_events([row], layer=layer)
    finally:
        await layer.close()
    assert sent == [] and failed == [row]
    down = [r for r in records.records if "unavailable for event" in r.getMessage()]
    assert down and down[0].event_id == row.id
    assert "Redis unreachable" in down[0].getMessage()
    later = logging.LogRecord("notifications", logging.INFO, __file__, 1, "after", None, None)
    ContextFilter().filter(later)
    assert later.event_id is None  # not left on the publisher's next lines


def test_json_lines_have_the_socket_and_event_fields():
    config = logging_config("json", "INFO")
    fmt = config["formatters"]["json"]["fmt"]
    from pythonjsonlogger.json import JsonFormatter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.request_id, record.tenant_id, record.socket_id, record.event_id = None, 3, "1.2", 9
    line = json.loads(JsonFormatter(fmt).format(record))
    assert line["socket_id"] == "1.2" and line["event_id"] == 9 and line["tenant_id"] == 3
