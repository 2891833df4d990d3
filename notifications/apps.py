from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # the domain's answers to the realtime transport (which imports no domain app)
        from .policy import DomainPolicy
        from .realtime.access import use_policy

        use_policy(DomainPolicy())
        # receivers: domain signals → catalog events; revocation: close sockets on lost access
        # checks: a configuration that cannot deliver events fails at start-up
        from . import checks, receivers, revocation  # noqa: F401
