"""/notifications/ page and the bell on every signed-in page."""

from __future__ import annotations

import re

from notifications.models import NotificationRead
from tests.notifications.test_inbox import notice


def bell_count(html: str) -> int:
    return int(re.search(r'id="notification-unread"[^>]*data-count="(\d+)"', html).group(1))


def test_the_bell_shows_the_unread_count_on_every_signed_in_page(client, staff, tenant):
    notice("one", tenant=tenant)
    notice("two", user=staff)
    client.force_login(staff)
    for url in ("/users/", "/notifications/", "/accounts/profile/"):
        assert bell_count(client.get(url).content.decode()) == 2, url


def test_anonymous_pages_have_no_bell_and_the_inbox_needs_sign_in(client):
    assert "notification-unread" not in client.get("/accounts/login/").content.decode()
    assert client.get("/notifications/").status_code == 302


def test_opening_the_page_reads_nothing_clicking_does(client, staff, tenant):
    first = notice("first", tenant=tenant)
    notice("second <b>bold</b>", tenant=tenant)
    client.force_login(staff)
    html = client.get("/notifications/").content.decode()
    assert html.index("second") < html.index("first")  # newest first
    assert "second &lt;b&gt;bold&lt;/b&gt;" in html  # escaped
    assert bell_count(client.get("/notifications/").content.decode()) == 2

    response = client.post(f"/notifications/{first.id}/read/", {"next": "/notifications/"})
    assert response.status_code == 302 and response["Location"] == "/notifications/"
    assert bell_count(client.get("/notifications/").content.decode()) == 1

    response = client.post("/notifications/read-all/", {"next": "https://evil.example/"})
    assert response["Location"] == "/notifications/"  # no open redirect
    assert bell_count(client.get("/notifications/").content.decode()) == 0


def test_another_tenants_notification_cannot_be_marked(client, staff, other_tenant):
    theirs = notice("beta", tenant=other_tenant)
    client.force_login(staff)
    assert client.post(f"/notifications/{theirs.id}/read/").status_code == 404
    assert NotificationRead.objects.count() == 0
    assert "beta" not in client.get("/notifications/").content.decode()


def test_category_filter_and_pagination(client, staff, tenant):
    for n in range(27):
        notice(f"note {n}", tenant=tenant)
    client.force_login(staff)
    html = client.get("/notifications/").content.decode()
    assert html.count("data-event-id=") == 25 and "Page 1 of 2" in html
    assert client.get("/notifications/?page=2").content.decode().count("data-event-id=") == 2
    assert "data-event-id=" not in client.get("/notifications/?category=payment").content.decode()
    bogus = client.get("/notifications/?category=bogus").content.decode()
    assert bogus.count("data-event-id=") == 25
