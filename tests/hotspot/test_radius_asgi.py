"""The ASGI fast path answers /radius/client/ and /radius/authorize/ exactly as the views do."""

from __future__ import annotations

import base64
import json

import pytest
from channels.db import database_sync_to_async

from hotspot.radius_asgi import RadiusFastPath
from tests.factories import HotspotUserFactory, RouterFactory

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "test-radius-token-0123456789"
GOOD = "Basic " + base64.b64encode(f"freeradius:{TOKEN}".encode()).decode()


async def inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"inner"})


async def call(app, path: str, query: str = "", auth: str | None = GOOD, method: str = "GET"):
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"authorization", auth.encode())] if auth else [],
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    body = sent[1]["body"]
    return sent[0]["status"], (json.loads(body) if body and body != b"inner" else body)


@pytest.fixture
def app():
    fast = RadiusFastPath(inner, threads=2)
    yield fast
    fast.pool.shutdown(wait=True)


@database_sync_to_async
def make_world():
    router = RouterFactory(address="192.0.2.60", secret="s-60")
    HotspotUserFactory(package__tenant=router.tenant, username="fay", password="pw-f")
    return router


async def test_answers_like_the_views(app):
    router = await make_world()
    status, body = await call(app, "/radius/client/", "address=192.0.2.60")
    assert status == 200 and body["control:FreeRADIUS-Client-Secret"] == "s-60"
    assert (await call(app, "/radius/client/", "address=192.0.2.61"))[0] == 404
    assert (await call(app, "/radius/client/", "address=x"))[0] == 400
    status, body = await call(app, "/radius/authorize/", f"router={router.pk}&username=fay")
    assert status == 200 and body["control:Cleartext-Password"] == "pw-f"
    status, body = await call(app, "/radius/authorize/", f"router={router.pk}&username=nope")
    assert status == 401 and body == {"reply:Reply-Message": "Unknown user."}
    assert (await call(app, "/radius/authorize/", "router=abc&username=fay"))[0] == 400


@pytest.mark.parametrize(
    "auth", [None, "Basic " + base64.b64encode(b"freeradius:nope").decode(), "Bearer " + TOKEN]
)
async def test_refuses_without_the_token(app, auth):
    await make_world()
    assert await call(app, "/radius/client/", "address=192.0.2.60", auth=auth) == (403, b"")


async def test_everything_else_goes_to_django(app):
    assert await call(app, "/radius/accounting/", method="POST") == (299, b"inner")
    assert await call(app, "/radius/authorize/", method="POST") == (299, b"inner")
    assert await call(app, "/api/routers/") == (299, b"inner")


def radius_count(kind: str, result: str, reason: str = "") -> float:
    from prometheus_client import REGISTRY

    labels = {"kind": kind, "result": result, "reason": reason}
    return REGISTRY.get_sample_value("hotspot_radius_requests_total", labels) or 0.0


async def test_each_answer_is_counted_once_by_kind_result_and_reject_reason(app):
    router = await make_world()
    wanted = [
        ("client", "found", ""),
        ("client", "unknown", ""),
        ("client", "forbidden", ""),
        ("authorize", "accept", ""),
        ("authorize", "reject", "unknown"),
    ]
    before = {key: radius_count(*key) for key in wanted}
    await call(app, "/radius/client/", "address=192.0.2.60")
    await call(app, "/radius/client/", "address=192.0.2.61")
    await call(app, "/radius/client/", "address=192.0.2.60", auth=None)
    await call(app, "/radius/authorize/", f"router={router.pk}&username=fay")
    await call(app, "/radius/authorize/", f"router={router.pk}&username=nope")
    assert {key: radius_count(*key) - before[key] for key in wanted} == dict.fromkeys(wanted, 1)


def test_the_django_views_count_alike(client):
    """FreeRADIUS pointed past the fast path (a proxy in between): the same counter moves."""
    wanted = [("authorize", "bad_request", ""), ("accounting", "forbidden", "")]
    before = {key: radius_count(*key) for key in wanted}
    answer = client.get("/radius/authorize/", {"router": "abc", "username": "fay"},
                        HTTP_AUTHORIZATION=GOOD)  # fmt: skip
    assert answer.status_code == 400
    assert client.post("/radius/accounting/?router=1", {}).status_code == 403
    assert {key: radius_count(*key) - before[key] for key in wanted} == dict.fromkeys(wanted, 1)
