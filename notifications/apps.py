from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # the domain's answers to the realtime transport (which imports no domain app)
        from notifications.policy import DomainPolicy
        from notifications.realtime.access import use_policy

        use_policy(DomainPolicy())
        # checks: a configuration that cannot deliver events fails at start-up; receivers: the
        # table of domain signals → catalog events, and → socket closes on lost access
        # emails: domain signals → the email outbox
        from notifications import (
            checks,  # noqa: F401
            emails,  # noqa: F401
        )
        from notifications.events import receivers  # noqa: F401

    def online_counts(self, tenant_ids: list[int]) -> dict[int, int]:
        """People online per tenant, for domain pages that cannot import notifications (the
        tenant admin's Online column); raises when the presence store is down."""
        from notifications.realtime import presence

        return presence.online_counts(tenant_ids)
