"""Failed-login lockout: Django's own auth signals feed the accounts services."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from . import services


@receiver(user_login_failed, dispatch_uid="accounts.count_login_failure")
def count_login_failure(sender: Any, credentials: dict, **kwargs: Any) -> None:
    username = credentials.get("username")
    if username:
        services.user_record_login_failure(username=username)


@receiver(user_logged_in, dispatch_uid="accounts.reset_login_failures")
def reset_login_failures(sender: Any, user: Any, **kwargs: Any) -> None:
    services.user_record_login_success(user=user)
