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

    def then(self, later: Change) -> Change:
        """The net of this change followed by `later` (same scope), for a watcher told of
        neither: a person who came and went is not mentioned, nor one who went and came back
        (the watcher still lists them); `online` is the later figure."""
        gone_later = set(later.removed)
        back_later = {info.get("id") for info in later.added}
        gone_first = set(self.removed)
        came_first = {info.get("id") for info in self.added}
        return Change(
            self.scope,
            added=[i for i in self.added if i.get("id") not in gone_later | back_later]
            + [i for i in later.added if i.get("id") not in gone_first],
            removed=[p for p in self.removed if p not in back_later]
            + [p for p in later.removed if p not in came_first and p not in gone_first],
            online=later.online,
        )


def _member_order(info: dict[str, Any]) -> tuple[str, int]:
    return (str(info.get("name", "")).lower(), int(info.get("id", 0)))
