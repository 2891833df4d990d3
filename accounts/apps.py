from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (the deployment's system checks)

        from . import receivers  # noqa: F401  (failed-login lockout)
