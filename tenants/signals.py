"""Signals sent by tenants.services after each change (receivers run inside the transaction).

Every signal is sent with keyword arguments `tenant` (the Tenant) and `by` (the acting User or
None for the system / public sign-up), plus those listed.
"""

from django.dispatch import Signal

tenant_registered = Signal()  # + admin_user: the first tenant admin created with it
tenant_created = Signal()  # created directly by a system admin (not via public sign-up)
tenant_updated = Signal()  # + changed: list[str] of field names
tenant_approved = Signal()
tenant_suspended = Signal()  # + reason: str
tenant_reactivated = Signal()
tenant_payment_secret_rotated = Signal()  # the old payment_secret no longer signs callbacks
