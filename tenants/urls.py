"""tenants pages: dashboard, registration, settings, and the system admin's tenant pages."""

from django.urls import path

from . import views

app_name = "tenants"
urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("dashboard/stats/", views.DashboardStatsView.as_view(), name="dashboard_stats"),
    path(
        "dashboard/hotspot-online/",
        views.HotspotOnlineStatsView.as_view(),
        name="dashboard_hotspot_online",
    ),
    path("register/", views.RegisterView.as_view(), name="register"),
    path("register/done/", views.RegisterDoneView.as_view(), name="register_done"),
    path("settings/", views.SettingsView.as_view(), name="settings"),
    path(
        "settings/payment-secret/",
        views.PaymentSecretView.as_view(),
        name="payment_secret",
    ),
    path(
        "settings/payment-secret/rotate/",
        views.PaymentSecretRotateView.as_view(),
        name="payment_secret_rotate",
    ),
    path("system/tenants/", views.SystemTenantsView.as_view(), name="system_tenants"),
    path(
        "system/tenants/<int:pk>/approve/", views.TenantApproveView.as_view(), name="tenant_approve"
    ),
    path(
        "system/tenants/<int:pk>/suspend/", views.TenantSuspendView.as_view(), name="tenant_suspend"
    ),
    path(
        "system/tenants/<int:pk>/reactivate/",
        views.TenantReactivateView.as_view(),
        name="tenant_reactivate",
    ),
]
