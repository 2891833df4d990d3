"""payments pages."""

from django.urls import path

from . import views

app_name = "payments"
urlpatterns = [
    path("payments/", views.PaymentListView.as_view(), name="payment_list"),
]
