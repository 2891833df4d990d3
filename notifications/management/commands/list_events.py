"""`manage.py list_events [--format text|markdown|json]`: print the event catalog."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from notifications.events import catalog, docs


class Command(BaseCommand):
    help = "Print the event catalog (markdown: the source of docs/events.md; json: for clients)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")

    def handle(self, *args: Any, format: str, **options: Any) -> None:
        if format == "markdown":
            self.stdout.write(docs.markdown(), ending="")
        elif format == "json":
            self.stdout.write(json.dumps(docs.as_dicts(), indent=2))
        else:
            for t in catalog.CATALOG.values():
                self.stdout.write(
                    f"{t.name:<20} {t.category:<8} {t.level:<8} {t.title}\n"
                    f"{'':<20} message:  {t.template}\n"
                    f"{'':<20} audience: {t.audience_text()}\n"
                    f"{'':<20} data:     {', '.join(t.fields)}\n"
                )
