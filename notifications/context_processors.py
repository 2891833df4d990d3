"""What every page needs for live toasts: whether to open a socket, and the toast timing map.

The timing map is built from the server's event catalog (notifications.catalog) when it exists,
so the browser never keeps a second, hand-written list of events.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

#: Auto-dismiss time per level (the issue's rule); events may override it in the catalog.
LEVEL_DURATIONS_MS = {"success": 5000, "info": 5000, "warning": 6000, "error": 7000}


def _catalog_events() -> dict[str, dict[str, Any]]:
    """{event name: {"level", "title", "duration_ms"}} from the catalog, or {} before it exists."""
    try:
        from notifications import catalog
    except ImportError:
        return {}
    describe = getattr(catalog, "toast_map", None)
    if callable(describe):
        return describe()
    return {}


def notifications_ui(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    live = bool(user is not None and user.is_authenticated)
    return {
        "live_socket": live,
        "notifications_config": {
            "live": live,
            "ws_path": "/ws/notifications/",
            "levels": LEVEL_DURATIONS_MS,
            "events": _catalog_events() if live else {},
            "max_visible": 5,
        },
    }
