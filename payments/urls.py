"""payments pages."""

from django.urls import path  # noqa: F401

app_name = "payments"
urlpatterns: list = []
