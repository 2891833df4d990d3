"""Payments in the Django admin: read-only (only the provider's callback settles them)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_tools import ReadOnlyAdminMixin
from accounts.utils import mask_phone

from . import selectors
from .crypto import mask_secret
from .models import DarajaCredentials, Payment, SmsMessage, Voucher, VoucherBatch


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    deletable = False  # payments are the books: never deleted

    list_display = (
        "provider_reference",
        "tenant",
        "package",
        "masked_phone",
        "amount",
        "currency",
        "status",
        "created_at",
        "completed_at",
    )
    list_filter = ("status", ("tenant", admin.RelatedOnlyFieldListFilter), "created_at")
    # Searching by phone works on the stored digits; the page shows them masked.
    search_fields = ("provider_reference", "phone", "tenant__name", "package__name")
    list_select_related = ("tenant", "package")
    date_hierarchy = "created_at"
    fields = (
        "provider_reference",
        "tenant",
        "package",
        "masked_phone",
        "amount",
        "currency",
        "status",
        "failure_reason",
        "raw_callback",
        "created_at",
        "completed_at",
        "failed_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="Phone")
    def masked_phone(self, obj: Payment) -> str:
        return obj.masked_phone

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return selectors.payment_list(user=request.user)


class DarajaCredentialsForm(forms.ModelForm):
    """Secrets are write-only: blank keeps the stored value; the page shows them masked."""

    passkey = forms.CharField(required=False, widget=forms.PasswordInput, strip=True)
    consumer_key = forms.CharField(required=False, widget=forms.PasswordInput, strip=True)
    consumer_secret = forms.CharField(required=False, widget=forms.PasswordInput, strip=True)

    class Meta:
        model = DarajaCredentials
        fields = ("tenant", "shortcode", "account_type", "till_number")

    def save(self, commit: bool = True) -> DarajaCredentials:
        instance = super().save(commit=False)
        for name in ("passkey", "consumer_key", "consumer_secret"):
            if self.cleaned_data.get(name):
                setattr(instance, name, self.cleaned_data[name])
        if commit:
            instance.save()
        return instance


@admin.register(DarajaCredentials)
class DarajaCredentialsAdmin(admin.ModelAdmin):
    form = DarajaCredentialsForm
    list_display = ("tenant", "shortcode", "account_type", "till_number", "updated_at")
    list_select_related = ("tenant",)
    readonly_fields = ("stored_secrets", "updated_at")
    fields = (
        "tenant",
        "shortcode",
        "account_type",
        "till_number",
        "passkey",
        "consumer_key",
        "consumer_secret",
        "stored_secrets",
        "updated_at",
    )

    @admin.display(description="Stored secrets (masked)")
    def stored_secrets(self, obj: DarajaCredentials) -> str:
        if not obj.pk:
            return "—"
        return ", ".join(
            f"{name}: {mask_secret(getattr(obj, name)) or 'not set'}"
            for name in ("passkey", "consumer_key", "consumer_secret")
        )


@admin.register(VoucherBatch)
class VoucherBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: batches are created by tenant admins on /vouchers/ or create_vouchers."""

    list_display = ("pk", "tenant", "package", "count", "prefix", "created_by", "created_at")
    list_filter = (("tenant", admin.RelatedOnlyFieldListFilter), "created_at")
    list_select_related = ("tenant", "package", "created_by")


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only; codes are searchable (typed as printed, without dashes)."""

    list_display = ("code", "tenant", "package", "status", "used_at", "hotspot_user")
    list_filter = ("status", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("code",)
    list_select_related = ("tenant", "package", "hotspot_user")
    exclude = ("token",)


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Delivery state of the customers' login SMS (the body holds a password: not listed)."""

    list_display = ("pk", "tenant", "masked", "status", "attempts", "last_error", "created_at")
    list_filter = ("status", ("tenant", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("tenant",)
    exclude = ("body",)

    @admin.display(description="Phone")
    def masked(self, obj: SmsMessage) -> str:
        return mask_phone(obj.phone)
