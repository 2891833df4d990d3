"""Who may join what, and the one re-check of a user: THE authorization rule of every socket.

`allowed_groups(user)` / `may_join(user, group)` are pure functions of the user row (no ORM),
shared by /ws/notifications/, the Pusher endpoint (/broadcasting/auth), the inbox and replay.
`delivers(message, ...)` is the per-socket audience filter of an event message (role, toOthers).
`fresh_user(user_id)` re-reads an account and applies the platform's sign-in rule, for the
sockets' re-check timer and for replay.

Domain rules (is this account blocked, may this person edit that record, which tenants exist)
belong to the domain apps; the realtime package reaches them only through `policy`, which the
notifications app installs in its `ready()` (notifications/policy.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from django.contrib.auth import get_user_model

from .groups import SYSTEM_ADMIN_GROUP, tenant_group, user_group


class Policy(Protocol):
    """The domain answers the transport needs (implemented by notifications.policy)."""

    def block_reason(self, user: Any) -> str | None:
        """Why `user` may not be signed in now (blocked, tenant pending/suspended), else None."""

    def record_scope(self, user: Any, record: str) -> str | None:
        """The presence scope of `record` ("user.42") if `user` may edit it, else None."""

    def tenant_ids(self) -> list[int]:
        """Every tenant's id, in order (the system admins' online counts)."""

    def group_exists(self, group: str) -> bool:
        """Whether a public group names an existing tenant or user (the publish API)."""

    def payment_for_token(self, token: str) -> int | None:
        """The id of the payment a portal token opens (unknown, malformed, expired: None)."""

    def payment_state(self, payment_id: int) -> dict[str, Any] | None:
        """What the paying customer may know of their payment (the portal's `payment` frame)."""


class _NoPolicy:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("notifications.realtime.access.policy is set in NotificationsConfig")


policy: Policy = _NoPolicy()  # type: ignore[assignment]


def use_policy(new: Policy) -> None:
    global policy
    policy = new


def allowed_groups(user: Any) -> list[str]:
    """The public groups `user` may join, in welcome order.

    Tenant users: their tenant's group and their own user group. System admins: system.admin and
    their own user group (never tenant groups). Anyone else: nothing. Reads only fields of the
    user row, so it is safe on the event loop.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    role = getattr(user, "role", None)
    if role == "system_admin":
        return [SYSTEM_ADMIN_GROUP, user_group(user.pk)]
    if role in ("tenant_admin", "staff") and user.tenant_id is not None:
        return [tenant_group(user.tenant_id), user_group(user.pk)]
    return []


def may_join(user: Any, channel: str | None) -> bool:
    """Whether `user` may receive events of `channel` (a public group name)."""
    return isinstance(channel, str) and channel in allowed_groups(user)


def delivers(message: dict, *, role: str | None, socket_id: str | None) -> bool:
    """Whether an event message is for this socket: its role is in the audience, and it is not
    the socket that caused the event (toOthers). The hot path: no ORM, no JSON."""
    roles = message.get("roles")
    if roles is not None and role not in roles:
        return False
    exclude = message.get("exclude")
    return exclude is None or exclude != socket_id


def fresh_user(user_id: int) -> tuple[Any, str]:
    """(the account re-read now, "") or (None, why it may not be on a socket any more). Sync."""
    user = get_user_model().objects.select_related("tenant").filter(pk=user_id).first()
    if user is None or not user.is_active:
        return None, "Account removed."
    reason = policy.block_reason(user)
    if reason:
        return None, reason
    return user, ""


def policy_block_reason(user: Any) -> str | None:
    """The domain's sign-in rule for `user` (through `policy`)."""
    return policy.block_reason(user)
