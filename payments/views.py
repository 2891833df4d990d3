"""The tenant's payments, filterable by status; phones are shown masked."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied as Http403
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.views import TenantMemberMixin

from . import selectors, services
from .forms import DarajaCredentialsForm
from .models import DarajaCredentials, Payment


def mpesa_settings_context(tenant: Any, *, can_edit: bool, form: Any = None) -> dict[str, Any]:
    """The M-Pesa section of /settings/ (tenants.views.SettingsView includes it)."""
    stored = DarajaCredentials.objects.filter(tenant=tenant).first()
    if form is None and can_edit:
        initial = (
            {
                "shortcode": stored.shortcode,
                "account_type": stored.account_type,
                "till_number": stored.till_number,
            }
            if stored
            else {}
        )
        form = DarajaCredentialsForm(initial=initial, stored=stored)
    return {"mpesa_form": form, "mpesa_stored": stored, "mpesa_can_edit": can_edit}


class MpesaSettingsView(TenantMemberMixin, View):
    """POST from /settings/: the tenant admin sets the tenant's Daraja account."""

    def post(self, request: HttpRequest) -> HttpResponse:
        from tenants.forms import TenantSettingsForm
        from tenants.services import UPDATABLE_FIELDS

        if not request.user.is_tenant_admin:
            raise Http403("Only the tenant's admins can change its M-Pesa account.")
        tenant = self.tenant
        stored = DarajaCredentials.objects.filter(tenant=tenant).first()
        form = DarajaCredentialsForm(request.POST, stored=stored)
        if form.is_valid():
            try:
                services.daraja_credentials_set(tenant=tenant, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, "The M-Pesa account has been saved.")
                return redirect("tenants:settings")
        tenant_form = TenantSettingsForm(initial={f: getattr(tenant, f) for f in UPDATABLE_FIELDS})
        return render(
            request,
            "tenants/settings.html",
            {
                "form": tenant_form,
                "tenant": tenant,
                "can_edit": True,
                **mpesa_settings_context(tenant, can_edit=True, form=form),
            },
            status=400,
        )


class PaymentListView(TenantMemberMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        status = request.GET.get("status", "")
        if status not in Payment.Status.values:
            status = ""
        query = (request.GET.get("q") or "").strip()[:100]
        payments = selectors.payment_list(user=request.user, search=query, status=status or None)
        page = Paginator(payments, 25).get_page(request.GET.get("page"))
        return render(
            request,
            "payments/payment_list.html",
            {"page": page, "status": status, "q": query, "statuses": Payment.Status.choices},
        )
