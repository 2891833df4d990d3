"""Signals sent by accounts.services (receivers run inside the service's transaction).

Every signal carries `by` (the acting User, or None for the system) and:
- user_created / user_updated / password_changed / account_activated: `user`
- user_updated: + `changed`: list[str] of field names
- user_deleted: `user_id`, `username`, `full_name`, `tenant_id`, `role` (the row is gone)
- account_suspended: `user`, `reason`, `until` (datetime or None), `lockout` (bool)

Not a change to an account (no `by`):
- sign_in_locked: a sign-in lockout started. `user` (the User, or None for an unknown username
  or a lock of the whole address), `username` (as typed; "" for an address lock), `address`
  (the client address, config.clientip), `until` (aware datetime the lock lasts to, extended while
  the guessing goes on). The account itself is not suspended.
"""

from django.dispatch import Signal

user_created = Signal()
user_updated = Signal()
user_deleted = Signal()
password_changed = Signal()
account_suspended = Signal()
account_activated = Signal()

# Sent when failed sign-ins lock an address or account out: `user` (or None for an unknown
# username), `username`, `address` (the client's IP), `until` (datetime the lock ends).
sign_in_locked = Signal()
