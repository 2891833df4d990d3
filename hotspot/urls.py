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
]
