from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # receivers: domain signals → catalog events; revocation: close sockets on lost access
        # checks: a configuration that cannot deliver events fails at start-up
        from . import checks, receivers, revocation  # noqa: F401
