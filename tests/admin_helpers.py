"""Driving the Django admin like a person: CSRF token from the page, actions, messages."""

from __future__ import annotations

import re


def csrf_token(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def run_action(client, changelist: str, action: str, objects, **extra):
    """Tick `objects` on the change list, pick `action`, press Go (follows redirects)."""
    data = {
        "csrfmiddlewaretoken": csrf_token(client, changelist),
        "action": action,
        "_selected_action": [obj.pk for obj in objects],
        "index": 0,
        **extra,
    }
    return client.post(changelist, data, follow=True)


def messages_of(response) -> list[tuple[str, str]]:
    """The (level, text) messages shown on the final page."""
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def submit_page_form(client, page, url: str, **fields):
    """Post the page's own form: its hidden inputs (CSRF, ids, action) plus `fields`."""
    data: dict[str, list[str]] = {}
    for name, value in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text
    ):
        data.setdefault(name, []).append(value)
    for name, value in fields.items():
        data[name] = [value]
    return client.post(url, data, follow=True)
