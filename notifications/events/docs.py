"""Views derived from the catalog: docs/events.md, `list_events`, the browser's toast map."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from notifications.events.catalog import CATALOG, EventType
from tenants.models import Tenant


def as_dicts() -> list[dict[str, Any]]:
    """The catalog as JSON-ready dicts (e.g. for the browser's toast map)."""
    return [
        {
            "name": t.name,
            "category": t.category,
            "level": t.level,
            "title": t.title,
            "message": t.template,
            "fields": dict(t.fields),
            "audience": t.audience_text(),
            "object": t.model.__name__ if t.model else None,
            "description": t.description,
        }
        for t in CATALOG.values()
    ]


def _fire_args(t: type[EventType]) -> str:
    if t.model is None:
        return "[--tenant SLUG] [--user USERNAME] [--title T] [--message M] [--level L]"
    alternative = {Tenant: " | --tenant SLUG", User: " | --user USERNAME"}.get(t.model, "")
    return f"--object <{t.model.__name__} id>{alternative}"


def markdown() -> str:
    """docs/events.md, generated: `manage.py list_events --format markdown > docs/events.md`."""
    lines = [
        "# Event reference",
        "",
        "<!-- Generated from notifications/events/catalog.py by "
        "`python manage.py list_events --format markdown > docs/events.md`. Do not edit; "
        "a test fails when this file is stale. -->",
        "",
        "Every event reaches the browser as one `event` frame on `/ws/notifications/`:",
        "",
        "```json",
        '{"type":"event","id":42,"event":"UserCreated","category":"user","level":"success",'
        '"title":"User Created","message":"Jane Doe has been added to the system.",'
        '"channel":"tenant.3","data":{...},"occurred_at":"2026-01-31T12:00:00.000Z"}',
        "```",
        "",
        "- `id` increases across all events of the platform (a single sequence).",
        "- `channel` is the group the frame was sent to. A socket that is in several of an "
        "event's groups gets one frame per group, all with the same `id`: dedupe by `id`.",
        "- `message` and every string in `data` are plain text: escape them (use `textContent`).",
        "- In a message, `{money}` is the payload's `amount` written in its `currency` "
        "(`NGN 1,500.00`, `UGX 5,000`: the currency's decimals, thousands grouped); the "
        "browser shows `occurred_at` in the tenant's time zone.",
        "- Groups: `tenant.<id>` (members of that tenant; some events only reach its tenant "
        "admins), `user.<id>` (that person), `system.admin` (system admins, who are not "
        "members of tenant groups).",
        "- Timestamps are ISO 8601 UTC; phones are masked (`2547****678`); payloads never hold "
        "passwords, secrets or hashes.",
        "- The tab that caused a change (header `X-Socket-ID`) does not get its events.",
        "",
        "Delivery: an event is stored in the same database transaction as the change that "
        "caused it, and published only after that transaction commits (a rolled-back change "
        "emits nothing). If the channel layer is down the event stays stored and is published "
        "when the layer is back, so delivery is at-least-once: dedupe by `id`. Events stay "
        "stored after publishing (inbox and replay read them).",
        "",
        "| event | category | level | title | audience |",
        "|---|---|---|---|---|",
    ]
    for t in CATALOG.values():
        lines.append(
            f"| [`{t.name}`](#{t.name.lower()}) | {t.category} | {t.level} | {t.title} | "
            f"{t.audience_text()} |"
        )
    for t in CATALOG.values():
        lines += ["", f"## {t.name}", ""]
        if t.description:
            lines += [t.description, ""]
        lines += [
            f"- category: `{t.category}`, level: `{t.level}`, title: “{t.title}”",
            f"- message: “{t.template}”",
            f"- audience: {t.audience_text()}",
            f"- fire by hand: `python manage.py fire_event {t.name} {_fire_args(t)}`",
            "",
            "| data field | holds |",
            "|---|---|",
        ]
        lines += [f"| `{name}` | {text} |" for name, text in t.fields.items()]
    return "\n".join(lines) + "\n"
