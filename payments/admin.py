"""Payments in the Django admin: read-only (only the provider's callback settles them)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from . import selectors
from .models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False
