"""`manage.py shell` with the event helpers already imported, so one line fires an event::

broadcast(UserCreated.from_user(User.objects.get(username="acme-staff")))
"""

from __future__ import annotations

from django.core.management.commands import shell

from notifications.events.catalog import CATALOG


class Command(shell.Command):
    def get_auto_imports(self) -> list[str]:
        return [
            *(super().get_auto_imports() or []),
            "notifications.events.broadcast.broadcast",
            *(f"notifications.events.catalog.{name}" for name in CATALOG),
        ]
