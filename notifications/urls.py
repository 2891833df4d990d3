"""notifications pages."""

from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("system/events/", views.SystemEventsView.as_view(), name="system_events"),
]
