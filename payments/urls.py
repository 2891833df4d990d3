"""payments pages, the captive portal and Daraja's callback."""

from django.urls import path

from . import callbacks, portal, report_views, views

app_name = "payments"
urlpatterns = [
    path("payments/", views.PaymentListView.as_view(), name="payment_list"),
    path("payments/stk/callback/<str:secret>/", callbacks.stk_callback, name="mpesa_callback"),
    path("settings/mpesa/", views.MpesaSettingsView.as_view(), name="mpesa_settings"),
    path("reports/", report_views.ReportView.as_view(), name="reports"),
    path("system/reports/", report_views.SystemReportView.as_view(), name="system_reports"),
    path("vouchers/", views.VoucherListView.as_view(), name="voucher_list"),
    path("vouchers/disable/", views.VoucherDisableView.as_view(), name="voucher_disable"),
    path("vouchers/<int:pk>/print/", views.VoucherPrintView.as_view(), name="voucher_print"),
    path("portal/<slug:slug>/redeem/", portal.redeem, name="portal_redeem"),
    path("portal/<slug:slug>/voucher/<str:token>/", portal.voucher_page, name="portal_voucher"),
    path("portal/status/<str:token>/", portal.status_json, name="portal_status"),
    path("portal/<slug:slug>/", portal.PortalView.as_view(), name="portal"),
    path("portal/<slug:slug>/pay/<str:token>/", portal.pay_page, name="portal_pay"),
]
