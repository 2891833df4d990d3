"""WebSocket URL map (wrapped by the origin check and authentication in config/asgi.py)."""

from django.urls import path

from .consumers import NotificationConsumer
from .portal_consumer import PortalPaymentConsumer
from .pusher import PusherConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/portal/", PortalPaymentConsumer.as_asgi()),  # a customer's own payment
    path("app/<str:key>", PusherConsumer.as_asgi()),  # Pusher protocol 7 (docs/pusher.md)
]
