"""WebSocket URL map (filled in by the live-event pipeline)."""

websocket_urlpatterns: list = []
