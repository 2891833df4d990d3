"""Top-level URL map: pages per app, Django admin for system admins, the API under /api/."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from notifications.realtime.pusher.views import BroadcastingAuthView, publish_view

urlpatterns = [
    path("admin/", admin.site.urls),
    # POST /i18n/setlang/ (set_language): the language switch of the sign-in page and portal.
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("config.api_urls")),
    path("radius/", include("hotspot.radius_urls")),
    path("broadcasting/auth", BroadcastingAuthView.as_view(), name="broadcasting-auth"),
    path("apps/<str:app_id>/events", publish_view, name="pusher-events"),
    path("apps/<str:app_id>/batch_events", publish_view, {"batch": True}, name="pusher-batch"),
    path("", include("accounts.urls")),
    path("", include("tenants.urls")),
    path("", include("hotspot.urls")),
    path("", include("payments.urls")),
    path("", include("notifications.urls")),
]

if settings.MPESA_SIMULATOR and settings.MPESA_SIMULATOR_ALLOWED:  # local settings only
    urlpatterns.insert(0, path("dev/mpesa/", include("payments.simulator_urls")))
