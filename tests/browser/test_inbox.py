"""The bell's unread count changes live: a new event, and "mark all as read" in another tab."""

from __future__ import annotations

from tests.browser.live import wait_connected, wait_for


def bell(page) -> int:
    return int(page.locator("#notification-unread").get_attribute("data-count"))


def wait_bell(page, count: int) -> None:
    wait_for(
        page,
        f"document.getElementById('notification-unread').dataset.count === '{count}'",
        timeout=20_000,
    )


def test_bell_count_changes_live_and_read_state_syncs_across_tabs(new_page, server):
    reader = new_page("beta-admin")
    other_tab = new_page("beta-admin")  # another browser (own session), same user
    reader.goto(f"{server.url}/notifications/")
    wait_connected(reader)
    before = bell(other_tab)

    server.manage("fire_event", "SystemNotification", "--tenant", "beta", "--message", "Hi")
    wait_bell(other_tab, before + 1)
    wait_bell(reader, before + 1)
    assert other_tab.locator("#notification-unread").is_visible()

    reader.reload()  # the new notice is listed; opening the page read nothing
    wait_connected(reader)
    assert "Hi" in reader.locator("#inbox-list").inner_text()
    assert bell(reader) == before + 1

    reader.click("#mark-all-read")
    wait_bell(other_tab, 0)  # the other tab learns it live (NotificationRead on user.<id>)
    assert not other_tab.locator("#notification-unread").is_visible()
    assert bell(reader) == 0
