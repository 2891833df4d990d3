"""hotspot pages: packages and hotspot users."""

from django.urls import path

from . import views

app_name = "hotspot"
urlpatterns = [
    path("packages/", views.PackageListView.as_view(), name="package_list"),
    path("packages/new/", views.PackageFormView.as_view(), name="package_create"),
    path("packages/<int:pk>/edit/", views.PackageFormView.as_view(), name="package_edit"),
    path("hotspot-users/", views.HotspotUserListView.as_view(), name="hotspot_user_list"),
    path("hotspot-users/new/", views.HotspotUserCreateView.as_view(), name="hotspot_user_create"),
    path(
        "hotspot-users/<int:pk>/disable/",
        views.HotspotUserDisableView.as_view(),
        name="hotspot_user_disable",
    ),
    path("routers/", views.RouterListView.as_view(), name="router_list"),
    path("routers/new/", views.RouterFormView.as_view(), name="router_create"),
    path("routers/<int:pk>/edit/", views.RouterFormView.as_view(), name="router_edit"),
    path("routers/<int:pk>/delete/", views.RouterDeleteView.as_view(), name="router_delete"),
    path("hotspot-sessions/", views.HotspotSessionListView.as_view(), name="hotspot_session_list"),
]
