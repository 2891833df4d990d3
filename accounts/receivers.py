"""Sign-in guessing: Django's own auth signals feed the accounts services (accounts.auth too)."""

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from config.clientip import client_ip

from . import services

logger = logging.getLogger("accounts.sign_in")


def request_address(request: Any) -> str:
    """The client address of a sign-in (config.clientip); "-" where there is no request."""
    return client_ip(request) if request is not None else "-"


@receiver(user_login_failed, dispatch_uid="accounts.count_login_failure")
def count_login_failure(sender: Any, credentials: dict, request: Any = None, **kw: Any) -> None:
    username = credentials.get("username")
    if username is None:
        return
    address = request_address(request)
    refused = getattr(request, "sign_in_lock", None) is not None  # set by accounts.auth
    try:
        lock = services.sign_in_failed(username=username, address=address, refused=refused)
    except Exception as exc:  # the cache is down: the attempt already failed; say so in the log
        logger.error("sign-in failure from %s not counted (cache unavailable): %r", address, exc)
        return
    logger.info("sign-in %s for %r from %s", "refused" if refused else "failed", username, address)
    if lock is not None and request is not None:
        request.sign_in_lock = lock


@receiver(user_logged_in, dispatch_uid="accounts.reset_login_failures")
def reset_login_failures(sender: Any, user: Any, request: Any = None, **kwargs: Any) -> None:
    try:
        services.user_record_login_success(
            user=user, address=request_address(request) if request is not None else None
        )
    except Exception as exc:
        logger.error("sign-in success of %r not recorded: %r", user.username, exc)
