"""WebSocket URL map (wrapped by the origin check and authentication in config/asgi.py)."""

from django.urls import path

from .consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
]
