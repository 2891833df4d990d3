"""/radius/: the internal endpoints of FreeRADIUS's rlm_rest (hotspot/radius_views.py)."""

from django.urls import path

from . import radius_views

app_name = "radius"
urlpatterns = [
    path("client/", radius_views.client_view, name="client"),
    path("authorize/", radius_views.authorize_view, name="authorize"),
    path("accounting/", radius_views.accounting_view, name="accounting"),
]
