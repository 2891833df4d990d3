"""`manage.py prune_notifications [--days 90]`: delete stored notifications older than N days."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from notifications.inbox import prune


class Command(BaseCommand):
    help = "Delete notifications (and their read state) older than --days days (default 90)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=90)

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1.")
        deleted = prune(days=days)
        self.stdout.write(f"Deleted {deleted} notification(s) older than {days} day(s).\n")
