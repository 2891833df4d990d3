"""Signals sent by payments.services (receivers run inside the service's transaction).

All carry `payment` and `by` (None: the provider's callback):
- payment_initiated, payment_completed (+ `hotspot_user`, the provisioned one), payment_failed
  (+ `reason`).
"""

from django.dispatch import Signal

payment_initiated = Signal()
payment_completed = Signal()
payment_failed = Signal()

# Vouchers: voucher_batch_created (`batch`, `by`); voucher_redeemed (`voucher`, `hotspot_user`).
voucher_batch_created = Signal()
voucher_redeemed = Signal()
voucher_disabled = Signal()  # `voucher` (now disabled), `by`: a lost or stolen code stops working
# SMS: sms_failed (`message`, the SmsMessage, after its last attempt).
sms_failed = Signal()
