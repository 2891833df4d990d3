"""The tenant's payments, filterable by status; phones are shown masked."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied as Http403
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.forms import BootstrapFormMixin
from accounts.views import TenantMemberMixin
from config.errors import DomainError
from config.pages import live_row, paginate
from hotspot.models import Package

from . import selectors, services, vouchers
from .forms import DarajaCredentialsForm
from .models import DarajaCredentials, Payment, Voucher, VoucherBatch


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
            raise Http403(_("Only the tenant's admins can change its M-Pesa account."))
        tenant = self.tenant
        stored = DarajaCredentials.objects.filter(tenant=tenant).first()
        form = DarajaCredentialsForm(request.POST, stored=stored)
        if form.is_valid():
            try:
                services.daraja_credentials_set(tenant=tenant, by=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, _("The M-Pesa account has been saved."))
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
        if (row := live_row(request, payments, "payments/_payment_row.html", {})) is not None:
            return row
        page = paginate(request, payments)
        return render(
            request,
            "payments/payment_list.html",
            {"page": page, "status": status, "q": query, "statuses": Payment.Status.choices},
        )


# --- vouchers (tenant admins create and print; staff see) -----------------------------------


class VoucherBatchForm(BootstrapFormMixin, forms.Form):
    package = forms.ModelChoiceField(
        label=gettext_lazy("Package"), queryset=Package.objects.none(), empty_label=None
    )
    count = forms.IntegerField(
        min_value=1, max_value=1000, initial=20, label=gettext_lazy("How many")
    )
    prefix = forms.CharField(
        label=gettext_lazy("Prefix"),
        max_length=6,
        required=False,
        help_text=gettext_lazy("Optional, up to 6 letters or digits."),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = Package.objects.for_user(user).filter(is_active=True)


class VoucherListView(TenantMemberMixin, View):
    template_name = "payments/voucher_list.html"

    def _render(self, request: HttpRequest, form: Any, status: int = 200) -> HttpResponse:
        batches = (
            VoucherBatch.objects.for_user(request.user)
            .select_related("package")
            .annotate(
                used=Count("vouchers", filter=Q(vouchers__status=Voucher.Status.USED)),
                disabled=Count("vouchers", filter=Q(vouchers__status=Voucher.Status.DISABLED)),
            )
            .order_by("-created_at", "-pk")
        )
        if (row := live_row(request, batches, "payments/_voucher_batch_row.html", {})) is not None:
            return row
        page = paginate(request, batches)
        return render(
            request,
            self.template_name,
            {
                "page": page,
                "form": form,
                "disable_form": VoucherDisableForm(),
                "can_create": request.user.is_tenant_admin,
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, VoucherBatchForm(user=request.user))

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_tenant_admin:
            raise Http403(_("Only the tenant's admins can create vouchers."))
        form = VoucherBatchForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                batch = vouchers.voucher_batch_create(
                    tenant=self.tenant, by=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form.apply_service_error(exc)
            else:
                messages.success(request, _("{count} vouchers created.").format(count=batch.count))
                return redirect("payments:voucher_print", pk=batch.pk)
        return self._render(request, form, status=400)


class VoucherDisableForm(BootstrapFormMixin, forms.Form):
    code = forms.CharField(label=gettext_lazy("Voucher code"), max_length=40)


class VoucherDisableView(TenantMemberMixin, View):
    """POST (tenant admins): disable one unused voucher by its code (a lost or stolen one)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_tenant_admin:
            raise Http403(_("Only the tenant's admins can disable vouchers."))
        form = VoucherDisableForm(request.POST)
        voucher = vouchers.voucher_find(user=request.user, code=request.POST.get("code", ""))
        if not form.is_valid() or voucher is None:
            messages.error(request, _("No voucher of yours has that code."))
            return redirect("payments:voucher_list")
        try:
            vouchers.voucher_disable(voucher=voucher, by=request.user)
        except DomainError as exc:
            messages.error(request, f"{voucher.display_code}: {exc.message}")
        else:
            messages.success(
                request,
                _("Voucher %(code)s has been disabled; it no longer works.")
                % {"code": voucher.display_code},
            )
        return redirect("payments:voucher_list")


class VoucherPrintView(TenantMemberMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = (
            VoucherBatch.objects.for_user(request.user)
            .select_related("package", "tenant")
            .filter(pk=pk)
            .first()
        )
        if batch is None:
            raise Http404("No such voucher batch.")
        portal_url = request.build_absolute_uri(f"/portal/{batch.tenant.slug}/")
        return render(
            request,
            "payments/voucher_print.html",
            {"batch": batch, "vouchers": batch.vouchers.all(), "portal_url": portal_url},
        )
