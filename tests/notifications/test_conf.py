"""notifications/conf.py and notifications/checks.py: one declaration per setting, bad ones fail."""

import re
from pathlib import Path

import pytest
from django.core import checks
from django.test import override_settings

from notifications.checks import check_channel_layer, check_settings
from notifications.conf import SETTINGS, notification_settings

ROOT = Path(__file__).resolve().parents[2]


def ids(messages):
    return [m.id for m in messages]


def test_defaults_apply_when_nothing_is_set(monkeypatch):
    monkeypatch.delenv("NOTIFICATIONS_REPLAY_LIMIT", raising=False)
    assert notification_settings.REPLAY_LIMIT == 500
    assert notification_settings.WS_RATE == 20.0


def test_environment_is_read_and_converted(monkeypatch):
    monkeypatch.setenv("NOTIFICATIONS_REPLAY_LIMIT", "7")
    assert notification_settings.REPLAY_LIMIT == 7


@override_settings(NOTIFICATIONS_REPLAY_LIMIT=3)
def test_a_django_setting_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("NOTIFICATIONS_REPLAY_LIMIT", "7")
    assert notification_settings.REPLAY_LIMIT == 3


def test_an_undeclared_setting_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NOTIFICATIONS_NOPE"):
        notification_settings.NOPE  # noqa: B018


def test_the_configured_settings_pass_the_checks():
    assert check_settings() == []
    assert check_channel_layer() == []


def test_a_bad_value_is_an_error_at_startup(monkeypatch):
    monkeypatch.setenv("NOTIFICATIONS_WS_RATE", "fast")
    errors = check_settings()
    assert ids(errors) == ["notifications.E001"]
    assert "NOTIFICATIONS_WS_RATE" in errors[0].msg


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_a_number_that_is_not_finite_is_an_error_at_startup(monkeypatch, value):
    """nan passes every minimum (comparisons are false), inf would stall the publisher's poll."""
    monkeypatch.setenv("NOTIFICATIONS_POLL_SECONDS", value)
    errors = check_settings()
    assert ids(errors) == ["notifications.E001"]
    assert f"NOTIFICATIONS_POLL_SECONDS={value!r} is not a finite number" in errors[0].msg


@override_settings(NOTIFICATIONS_PRESENCE_TTL=-1)
def test_a_value_below_its_minimum_is_an_error():
    assert ids(check_settings()) == ["notifications.E001"]


@pytest.mark.parametrize(
    ("value", "errors"),
    [(0.00001, ["notifications.E003"]), (0, []), (0.002, []), (1, ["notifications.E003"])],
)
def test_a_thread_switch_interval_too_short_or_too_long_is_an_error(value, errors):
    """0 leaves Python's own; below 100 µs the interpreter would mostly hand the GIL around."""
    with override_settings(NOTIFICATIONS_SWITCH_INTERVAL_SECONDS=value):
        assert ids(check_settings()) == errors


@override_settings(NOTIFICATIONS_PRESENSE_TTL=5)
def test_a_misspelt_setting_is_an_error():
    errors = check_settings()
    assert ids(errors) == ["notifications.E002"]
    assert "NOTIFICATIONS_PRESENSE_TTL" in errors[0].msg


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "no.such.Layer"}})
def test_a_layer_that_cannot_be_built_is_an_error():
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    try:
        assert ids(check_channel_layer()) == ["notifications.E011"]
    finally:
        channel_layers.backends.pop("default", None)


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_several_workers_without_a_shared_layer_is_an_error(monkeypatch):
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    try:
        errors = check_channel_layer()
    finally:
        channel_layers.backends.pop("default", None)
    assert ids(errors) == ["notifications.E012"]
    assert isinstance(errors[0], checks.Error)


def test_deployment_docs_list_every_setting_with_its_default():
    text = (ROOT / "docs" / "deployment.md").read_text()
    for name, declared in SETTINGS.items():
        row = re.search(rf"^\| `NOTIFICATIONS_{name}` \| ([^|]*) \|", text, re.M)
        assert row, f"NOTIFICATIONS_{name} missing from docs/deployment.md's settings table"
        assert str(declared.default) in row.group(1) or (
            declared.default == "" and "empty" in row.group(1)
        ), f"NOTIFICATIONS_{name}: default {declared.default!r} not in {row.group(1)!r}"


def test_server_start_up_refuses_a_bad_configuration(monkeypatch, settings):
    from django.core.exceptions import ImproperlyConfigured

    from config.asgi import server_started

    settings.ASGI_TUNE_GC = False  # (were the checks to pass: leave this process's GC alone)
    monkeypatch.setenv("NOTIFICATIONS_LEASE_SECONDS", "soon")
    with pytest.raises(ImproperlyConfigured, match="NOTIFICATIONS_LEASE_SECONDS"):
        server_started()


async def test_a_failed_start_up_fails_the_asgi_lifespan():
    from config.background import BackgroundMiddleware

    def refuse():
        raise RuntimeError("bad config")

    app = BackgroundMiddleware(lambda *args: None, on_startup=refuse)
    sent = []
    messages = iter([{"type": "lifespan.startup"}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.failed", "message": "bad config"}]
