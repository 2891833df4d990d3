"""WebSocket URL map (wrapped by the origin check and authentication in config/asgi.py)."""

from django.urls import path

from notifications.realtime.consumers import NotificationConsumer
from notifications.realtime.portal import PortalPaymentConsumer
from notifications.realtime.pusher.consumer import PusherConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/portal/", PortalPaymentConsumer.as_asgi()),  # a customer's own payment
    path("app/<str:key>", PusherConsumer.as_asgi()),  # Pusher protocol 7 (docs/pusher.md)
]
