"""Customer payments for hotspot packages, settled by the payment provider's callback."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.utils import mask_phone
from tenants.scoping import TenantScopedQuerySet


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    class Provider(models.TextChoices):
        MANUAL = "manual", _("Manual / API")
        DARAJA = "daraja", _("M-Pesa (Daraja STK push)")
        CASH = "cash", _("Cash")

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="payments")
    package = models.ForeignKey(
        "hotspot.Package", on_delete=models.PROTECT, related_name="payments"
    )
    phone = models.CharField(max_length=20)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="KES")
    provider_reference = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(max_length=500, blank=True)
    raw_callback = models.JSONField(null=True, blank=True)
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.MANUAL)
    # The customer's key to this payment (portal page, socket, status JSON): unguessable.
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    # Daraja signs nothing: its callback is accepted only on a URL carrying this secret.
    callback_secret = models.CharField(
        max_length=64, default=new_token, editable=False, db_index=True
    )
    checkout_request_id = models.CharField(max_length=64, blank=True, db_index=True)
    merchant_request_id = models.CharField(max_length=64, blank=True)
    receipt_number = models.CharField(max_length=32, blank=True)
    result_code = models.CharField(max_length=16, blank=True)
    client_ip = models.CharField(max_length=45, blank=True)
    # The router's hand-off parameters (link-login-only, link-orig, mac, ip, chap-*).
    handoff = models.JSONField(default=dict, blank=True)
    last_queried_at = models.DateTimeField(null=True, blank=True)
    query_count = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "status", "created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payment_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.provider_reference

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


class DarajaCredentials(models.Model):
    """A tenant's own Lipa na M-Pesa Online account; secrets encrypted (payments.crypto)."""

    class AccountType(models.TextChoices):
        PAYBILL = "paybill", _("Paybill")
        TILL = "till", _("Till (Buy Goods)")

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="daraja_credentials"
    )
    shortcode = models.CharField(
        max_length=10, help_text="BusinessShortCode (paybill, or the till's store number)."
    )
    account_type = models.CharField(
        max_length=8, choices=AccountType.choices, default=AccountType.PAYBILL
    )
    till_number = models.CharField(
        max_length=10, blank=True, help_text="PartyB for a till; empty for a paybill."
    )
    passkey_encrypted = models.TextField(blank=True)
    consumer_key_encrypted = models.TextField(blank=True)
    consumer_secret_encrypted = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        verbose_name = "Daraja credentials"
        verbose_name_plural = "Daraja credentials"

    def __str__(self) -> str:
        return f"{self.shortcode} ({self.get_account_type_display()})"

    # Plaintext accessors; the model never stores plaintext.
    def _get(self, field: str) -> str:
        from .crypto import decrypt

        return decrypt(getattr(self, f"{field}_encrypted"))

    def _set(self, field: str, value: str) -> None:
        from .crypto import encrypt

        setattr(self, f"{field}_encrypted", encrypt(value or ""))

    passkey = property(lambda self: self._get("passkey"), lambda self, v: self._set("passkey", v))
    consumer_key = property(
        lambda self: self._get("consumer_key"), lambda self, v: self._set("consumer_key", v)
    )
    consumer_secret = property(
        lambda self: self._get("consumer_secret"),
        lambda self, v: self._set("consumer_secret", v),
    )

    @property
    def party_b(self) -> str:
        return self.till_number if self.account_type == self.AccountType.TILL else self.shortcode

    @property
    def transaction_type(self) -> str:
        if self.account_type == self.AccountType.TILL:
            return "CustomerBuyGoodsOnline"
        return "CustomerPayBillOnline"

    @property
    def is_complete(self) -> bool:
        return bool(
            self.shortcode
            and self.passkey_encrypted
            and self.consumer_key_encrypted
            and self.consumer_secret_encrypted
        )


class VoucherBatch(models.Model):
    """Prepaid codes a tenant admin printed for one package (sold over the counter)."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="voucher_batches"
    )
    package = models.ForeignKey(
        "hotspot.Package", on_delete=models.PROTECT, related_name="voucher_batches"
    )
    count = models.PositiveIntegerField()
    prefix = models.CharField(max_length=6, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.count} × {self.package.name}"


class Voucher(models.Model):
    class Status(models.TextChoices):
        UNUSED = "unused", _("Unused")
        USED = "used", _("Used")
        DISABLED = "disabled", _("Disabled")

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="vouchers")
    batch = models.ForeignKey(VoucherBatch, on_delete=models.CASCADE, related_name="vouchers")
    package = models.ForeignKey("hotspot.Package", on_delete=models.PROTECT, related_name="+")
    # Stored upper-case without separators; typed in any case, with or without dashes.
    code = models.CharField(max_length=24, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNUSED)
    used_at = models.DateTimeField(null=True, blank=True)
    hotspot_user = models.OneToOneField(
        "hotspot.HotspotUser", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The customer's key to the credentials page after redeeming (like a payment's token).
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    handoff = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.display_code

    @property
    def display_code(self) -> str:
        """XXXXX-XXXXX (prefix first), easier to read off a card."""
        body = self.code[len(self.batch.prefix) :] if self.batch_id else self.code
        groups = [body[i : i + 5] for i in range(0, len(body), 5)]
        return "-".join(([self.batch.prefix] if self.batch.prefix else []) + groups)


class SmsMessage(models.Model):
    """An SMS to a customer (their WiFi login), sent by the periodic runner and retried."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    phone = models.CharField(max_length=20)
    body = models.CharField(max_length=480)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="sms_messages"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    provider_id = models.CharField(max_length=100, blank=True)
    next_attempt_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"SMS to {mask_phone(self.phone)} ({self.status})"
