"""notifications pages."""

from django.urls import path

from notifications import views

app_name = "notifications"
urlpatterns = [
    path("system/events/", views.SystemEventsView.as_view(), name="system_events"),
    path("system/announce/", views.SystemAnnounceView.as_view(), name="system_announce"),
    path("notifications/", views.InboxView.as_view(), name="inbox"),
    path("notifications/<int:pk>/read/", views.InboxReadView.as_view(), name="inbox_read"),
    path("notifications/read-all/", views.InboxReadAllView.as_view(), name="inbox_read_all"),
]
