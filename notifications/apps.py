from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # receivers: domain signals → catalog events; revocation: close sockets on lost access;
        # emails: domain signals → the email outbox
        from . import emails, receivers, revocation  # noqa: F401
