"""The domain answers the realtime transport needs, in one place (`access.policy`).

notifications/realtime never imports a domain app; this module does, and NotificationsConfig
installs it. Each answer is the domain's own rule (accounts' sign-in rule, the user edit
page's permission), not a copy of it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from notifications.realtime.groups import parse_record, record_scope, tenant_of


class DomainPolicy:
    def block_reason(self, user: Any) -> str | None:
        from accounts.services import login_block_reason

        return login_block_reason(user) or None

    def record_scope(self, user: Any, record: str) -> str | None:
        """The rule of the edit page itself: system admins, and the admins of the record's
        tenant (sync: reads the database)."""
        from accounts import services
        from accounts.selectors import user_get
        from config.errors import DomainError

        parsed = parse_record(record)
        if parsed is None or parsed[0] != "user":
            return None
        if not getattr(user, "is_system_admin", False) and not services.can_manage_users(
            user, user.tenant_id
        ):
            return None
        try:
            target = user_get(user=user, user_id=parsed[1])
        except DomainError:
            return None
        return record_scope("user", target.pk)

    def tenant_ids(self) -> list[int]:
        from tenants.models import Tenant

        return list(Tenant.objects.order_by("pk").values_list("pk", flat=True))

    def group_exists(self, group: str) -> bool:
        from tenants.models import Tenant

        tenant = tenant_of(group)
        if tenant is not None:
            return Tenant.objects.filter(pk=tenant).exists()
        kind, _, ident = group.partition(".")
        if kind == "user":
            return get_user_model().objects.filter(pk=int(ident)).exists()
        return True  # system.admin

    def payment_for_token(self, token: str) -> int | None:
        from payments.selectors import payment_for_token

        payment = payment_for_token(token)
        return None if payment is None else payment.pk

    def payment_state(self, payment_id: int) -> dict[str, Any] | None:
        from payments.models import Payment
        from payments.selectors import payment_public_state

        payment = Payment.objects.select_related("package").filter(pk=payment_id).first()
        return None if payment is None else payment_public_state(payment=payment)
