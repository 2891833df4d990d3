"""The tenant's payments, filterable by status; phones are shown masked."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from accounts.views import TenantMemberMixin
from config.pages import paginate

from . import selectors
from .models import Payment


class PaymentListView(TenantMemberMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        status = request.GET.get("status", "")
        if status not in Payment.Status.values:
            status = ""
        query = (request.GET.get("q") or "").strip()[:100]
        payments = selectors.payment_list(user=request.user, search=query, status=status or None)
        page = paginate(request, payments)
        return render(
            request,
            "payments/payment_list.html",
            {"page": page, "status": status, "q": query, "statuses": Payment.Status.choices},
        )
