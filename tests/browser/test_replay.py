"""A page does not toast a replayed event its render already held (config.seen_ids)."""

from __future__ import annotations

import json

from tests.browser.live import wait_connected, wait_for


def toast_texts(page) -> list[str]:
    return page.locator("#toast-stack .app-toast").all_inner_texts()


def test_a_page_skips_replayed_events_listed_in_seen_ids(new_page, server):
    watcher = new_page("beta-admin")
    ids = {}
    for name in ("before", "held", "new"):
        message = f"seen-ids {name}"
        server.manage("fire_event", "SystemNotification", "--tenant", "beta", "--message", message)
        wait_for(
            watcher,
            "(m) => [...document.querySelectorAll('#toast-stack .app-toast')]"
            ".some((t) => t.innerText.includes(m))",
            arg=message,
            timeout=20_000,
        )
        ids[name] = watcher.evaluate("window.notifications.lastEventId")

    # A page rendered as if "before" was the newest published event and "held" was in its lists
    # (what resume_point() says when another process published "held" late).
    page = new_page("beta-admin")

    # (The config is rewritten before the deferred module reads it; rewriting the response
    # with page.route instead makes chromium block the socket as a local-network request.)
    override = json.dumps({"last_id": ids["before"], "seen_ids": [ids["held"]]})
    page.add_init_script(
        "document.addEventListener('readystatechange', () => {"
        " const el = document.getElementById('notifications-config');"
        " if (document.readyState !== 'interactive' || !el) return;"
        f" el.textContent = JSON.stringify(Object.assign(JSON.parse(el.textContent), {override}));"
        " });"
    )
    page.goto(f"{server.url}/users/")
    wait_connected(page)
    wait_for(
        page,
        "(m) => [...document.querySelectorAll('#toast-stack .app-toast')]"
        ".some((t) => t.innerText.includes(m))",
        arg="seen-ids new",
        timeout=20_000,
    )
    replayed = [t for t in page.frames_seen if "recv" in t and f'"id":{ids["held"]},' in t]
    assert replayed, "the server replayed the held event"
    assert not any("seen-ids held" in text for text in toast_texts(page))
    assert not any("seen-ids before" in text for text in toast_texts(page))
    assert page.evaluate("window.notifications.lastEventId") == ids["new"]
