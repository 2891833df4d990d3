"""Sign-in rules shared by the login forms, simplejwt and the WebSocket handshake."""

from __future__ import annotations

from typing import Any

from .services import login_block_reason


def user_authentication_rule(user: Any) -> bool:
    """simplejwt's USER_AUTHENTICATION_RULE: no tokens for blocked users or tenants."""
    return user is not None and user.is_active and login_block_reason(user) is None
