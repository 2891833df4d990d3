"""The socket Origin check (config.wsorigin): scheme, host and port, through the real ASGI stack."""

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from config.asgi import application
from config.wsorigin import normalize_origin
from tests.notifications.wsutil import access_token

pytestmark = pytest.mark.django_db(transaction=True)


async def handshake(origin, host="billing.example.com", *, scheme="ws", extra=()):
    headers = [(b"host", host.encode()), *extra]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    comm.scope["scheme"] = scheme
    connected, _ = await comm.connect(timeout=5)
    if connected:
        await comm.disconnect()
    return connected


def test_origins_normalise_scheme_host_and_default_port():
    assert normalize_origin("HTTPS://Billing.Example.com") == ("https", "billing.example.com", 443)
    assert normalize_origin("http://a.example:80") == ("http", "a.example", 80)
    for bad in ("null", "file://x", "https://", "https://a.example/path", "https://u@a.example"):
        assert normalize_origin(bad) is None


@override_settings(ALLOWED_HOSTS=["billing.example.com"], WS_ALLOWED_ORIGINS=[])
@pytest.mark.parametrize(
    ("origin", "scheme", "ok"),
    [
        ("http://billing.example.com", "ws", True),
        ("https://billing.example.com", "wss", True),
        ("https://billing.example.com:443", "wss", True),
        ("http://billing.example.com:8080", "ws", False),  # another port
        ("https://billing.example.com", "ws", False),  # another scheme
        ("http://billing.example.com", "wss", False),
        ("https://evil.example", "wss", False),
        ("null", "ws", False),
    ],
)
async def test_by_default_only_the_sites_own_origin_is_let_in(origin, scheme, ok):
    assert await handshake(origin, scheme=scheme) is ok


@override_settings(ALLOWED_HOSTS=["billing.example.com"], WS_ALLOWED_ORIGINS=[])
async def test_a_host_outside_allowed_hosts_is_no_own_origin():
    """DNS rebinding: evil.example pointed at our address sends Origin and Host alike."""
    assert not await handshake("http://evil.example", host="evil.example")


@override_settings(
    ALLOWED_HOSTS=["billing.example.com"],
    WS_ALLOWED_ORIGINS=[],
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
async def test_behind_a_tls_proxy_the_page_scheme_comes_from_the_proxy_header():
    proto = [(b"x-forwarded-proto", b"https")]
    assert await handshake("https://billing.example.com", extra=proto)
    assert not await handshake("http://billing.example.com", extra=proto)


@override_settings(
    ALLOWED_HOSTS=["billing.example.com", "api.example.com"],
    WS_ALLOWED_ORIGINS=["https://app.example.com", "http://localhost:5173"],
)
@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("https://app.example.com", True),
        ("http://localhost:5173", True),
        ("https://billing.example.com", False),  # the list replaces the default
        ("http://app.example.com", False),
        ("http://localhost:5174", False),
    ],
)
async def test_an_explicit_list_is_matched_exactly(origin, ok):
    assert await handshake(origin, scheme="wss") is ok


async def test_clients_without_an_origin_still_authenticate(staff):
    token = await access_token(staff)
    assert await handshake(None, extra=[(b"authorization", f"Bearer {token}".encode())])


@override_settings(
    ALLOWED_HOSTS=["billing.example.com"],
    WS_ALLOWED_ORIGINS=[],
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
async def test_a_remembered_verdict_is_per_proxy_scheme():
    """Verdicts are remembered per handshake; the same Origin and Host over plain http is not
    the https page's."""
    page = "https://billing.example.com"
    for _ in range(2):
        assert await handshake(page, extra=[(b"x-forwarded-proto", b"https")])
        assert not await handshake(page, extra=[(b"x-forwarded-proto", b"http")])
        assert not await handshake(page)


async def test_a_remembered_verdict_follows_the_settings():
    origin = "https://app.example.com"
    with override_settings(ALLOWED_HOSTS=["billing.example.com"], WS_ALLOWED_ORIGINS=[origin]):
        assert await handshake(origin, scheme="wss")
    with override_settings(ALLOWED_HOSTS=["billing.example.com"], WS_ALLOWED_ORIGINS=[]):
        assert not await handshake(origin, scheme="wss")
