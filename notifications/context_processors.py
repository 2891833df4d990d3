"""What every page needs for live toasts: whether to open a socket, and the toast timing map.

The timing map is built from the server's event catalog (notifications.events.catalog), so the
browser never keeps a second, hand-written list of events.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

#: Auto-dismiss time per level (the issue's rule); events may override it in the catalog.
LEVEL_DURATIONS_MS = {"success": 5000, "info": 5000, "warning": 6000, "error": 7000}


@cache
def _catalog_events(language: str) -> dict[str, dict[str, Any]]:
    """{event name: {"level", "title", "duration_ms"}} derived from the catalog, titles in
    `language` (the active one; one cached map per language).

    An event type may set `toast_ms` to stay longer than its level's time (the issue asks
    8 s for AccountSuspended, TenantRegistered and SystemAlert).
    """
    from notifications.events import catalog

    return {
        name: {
            "level": event_type.level,
            "title": _(event_type.title),
            "category": event_type.category,
            "duration_ms": getattr(event_type, "toast_ms", None)
            or LEVEL_DURATIONS_MS[event_type.level],
        }
        for name, event_type in catalog.CATALOG.items()
    }


def _strings() -> dict[str, str]:
    """The words static/js/notifications.js writes itself, in the active language."""
    return {
        "more": _("+{count} more"),
        "show_more": _("Show {count} more notifications"),
        "dismiss": _("Dismiss"),
        "live": _("Live"),
        "connecting": _("Connecting…"),
        "down": _("Offline"),
        "live_updates": _("Live updates: {state}"),
        "session_ended": _("Your session ended. Reload the page to sign in again."),
        "stopped": _("Live updates stopped"),
        "sign_in_again": _("Sign in again"),
        "reload": _("Reload"),
        "missed": _("Some updates were missed while offline."),
        "you": _("(you)"),
        "names": _("{first} and {last}"),
        "someone": _("Someone"),
        "editing_one": _("{names} is also editing this {noun}."),
        "editing_many": _("{names} are also editing this {noun}."),
        "noun_user": _("user"),
        # partials/pagination.html's "1–25 of 312", rewritten as live rows come and go
        "list_range": _("{start}–{end} of {count}"),
    }


def _resume_point(user: Any) -> dict[str, Any]:
    """The page's resume point: `last_id` and `seen_ids` (notifications.replay.resume_point).

    A socket that opens after the render gets what happened since, and nothing the page
    already shows in its lists.
    """
    from notifications.replay import resume_point

    point = resume_point(user)
    return {"last_id": point.last_id, "seen_ids": point.seen_ids}


def _unread(user: Any) -> int:
    from notifications.inbox import unread_count

    return unread_count(user)


def notifications_ui(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    live = bool(user is not None and user.is_authenticated)
    return {
        # A callable: templates call it when (and where) they render the bell, once per `with`.
        "inbox_unread": partial(_unread, user) if live else 0,
        "live_socket": live,
        "notifications_config": {
            "live": live,
            "ws_path": "/ws/notifications/",
            "levels": LEVEL_DURATIONS_MS,
            "events": _catalog_events(get_language()) if live else {},
            "strings": _strings() if live else {},
            "time_zone": timezone.get_current_timezone_name(),
            "max_visible": 5,
            **(_resume_point(user) if live else {"last_id": None, "seen_ids": []}),
        },
    }
