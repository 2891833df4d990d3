"""Top-level URL map: pages per app, Django admin for system admins, the API under /api/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    path("", include("accounts.urls")),
    path("", include("tenants.urls")),
    path("", include("hotspot.urls")),
    path("", include("payments.urls")),
    path("", include("notifications.urls")),
]
