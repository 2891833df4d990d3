"""What every presence store shares: the entry lifetime and what a store call returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from notifications.conf import notification_settings as conf


def presence_ttl() -> float:
    """Seconds an entry lives without a heartbeat."""
    return conf.PRESENCE_TTL


@dataclass
class Change:
    """What one store call changed in a scope."""

    scope: str
    added: list[dict[str, Any]] = field(default_factory=list)  # member infos
    removed: list[int] = field(default_factory=list)  # person ids
    online: int = 0  # people online in the scope afterwards

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def _member_order(info: dict[str, Any]) -> tuple[str, int]:
    return (str(info.get("name", "")).lower(), int(info.get("id", 0)))
