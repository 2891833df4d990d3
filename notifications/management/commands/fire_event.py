"""`manage.py fire_event NAME [--tenant SLUG] [--user USERNAME] [--title T] [--message M]
[--level L] [--object ID] [--all-tenants]`: store and publish one catalog event by hand.

SystemNotification/SystemAlert go to system.admin unless --tenant/--user address them;
`--all-tenants` makes one of them a PlatformAnnouncement to every active tenant's users (and the
system admins), e.g. a maintenance notice; `fire_event PlatformAnnouncement` is the same. Domain
events are built from their object: `--object ID`, or the tenant of `--tenant` / the account of
`--user` for tenant / user events. Nothing in the domain changes. On the embedded default
(in-memory layer) the running server's publisher picks the event up within a second.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from notifications.events import catalog
from notifications.events.broadcast import broadcast
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Fire one event from the catalog (see `manage.py list_events`)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", help="event name, e.g. SystemNotification or UserCreated")
        parser.add_argument("--tenant", metavar="SLUG", help="tenant short name")
        parser.add_argument("--user", metavar="USERNAME", help="account username")
        parser.add_argument("--title", help="override the title")
        parser.add_argument("--message", help="override the message")
        parser.add_argument("--level", help=f"override the level ({', '.join(catalog.LEVELS)})")
        parser.add_argument("--object", metavar="ID", help="id of the event's object")
        parser.add_argument(
            "--all-tenants",
            action="store_true",
            help="announce to every active tenant's users (SystemNotification/SystemAlert)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        try:
            event_type = catalog.get(name)
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
        level = options["level"]
        if level is not None and level not in catalog.LEVELS:
            raise CommandError(f"Unknown level {level!r}; use one of {', '.join(catalog.LEVELS)}.")
        for option in ("title", "message"):
            if options[option] is not None and not options[option].strip():
                raise CommandError(f"--{option} must not be empty.")
        tenant = self._tenant(options["tenant"])
        user = self._user(options["user"])
        if options["all_tenants"] or event_type is catalog.PlatformAnnouncement:
            if event_type.model is not None:
                raise CommandError(f"--all-tenants announces a system event, not {name}.")
            if tenant is not None or user is not None or options["object"] is not None:
                raise CommandError(
                    "--all-tenants goes to every tenant: no --tenant/--user/--object."
                )
            if not (options["message"] or "").strip():
                raise CommandError("An announcement needs its text: --message.")
            if event_type is not catalog.PlatformAnnouncement and level is None:
                level = event_type.level  # SystemAlert --all-tenants stays a warning
            event_type = catalog.PlatformAnnouncement

        if event_type.model is None:
            if options["object"] is not None:
                raise CommandError(f"{name} has no object; address it with --tenant/--user.")
            event = event_type.create(
                tenant=tenant,
                user=user,
                title=options["title"],
                message=options["message"],
                level=level,
            )
        else:
            obj = self._object(event_type, options["object"], tenant, user)
            event = event_type.from_object(obj)
            if options["title"]:
                event.title = options["title"]
            if options["message"]:
                event.message = options["message"]
            for text in event.translations.values():  # the sender's words in every language
                text["title"] = options["title"] or text["title"]
                text["message"] = options["message"] or text["message"]
            if level:
                event.level = level
        stored = broadcast(event)
        groups = ", ".join(
            t.group + (f" (roles: {', '.join(t.roles)})" if t.roles else "") for t in event.targets
        )
        self.stdout.write(f"Fired {stored.name} #{stored.id} to {groups or 'no group'}.")

    def _tenant(self, slug: str | None) -> Tenant | None:
        if slug is None:
            return None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)[:20])
            raise CommandError(f"No tenant with slug {slug!r}. Known: {known or 'none'}.")
        return tenant

    def _user(self, username: str | None) -> User | None:
        if username is None:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user with username {username!r}.")
        return user

    def _object(
        self,
        event_type: type[catalog.EventType],
        object_id: str | None,
        tenant: Tenant | None,
        user: User | None,
    ) -> Any:
        model = event_type.model
        assert model is not None
        label = model.__name__
        if object_id is not None:
            try:
                pk = int(object_id)
            except ValueError:
                raise CommandError(f"--object must be a {label} id (a number).") from None
            obj = model._default_manager.filter(pk=pk).first()
            if obj is None:
                raise CommandError(f"No {label} with id {pk}.")
            if model is Tenant and tenant is not None and obj.pk != tenant.pk:
                raise CommandError(f"{label} {pk} is not tenant {tenant.slug!r}.")
            obj_tenant_id = getattr(obj, "tenant_id", None)
            if model is not Tenant and tenant is not None and obj_tenant_id != tenant.pk:
                raise CommandError(f"{label} {pk} does not belong to tenant {tenant.slug!r}.")
            if model is User and user is not None and obj.pk != user.pk:
                raise CommandError(f"{label} {pk} is not user {user.username!r}.")
            return obj
        if model is Tenant and tenant is not None:
            return tenant
        if model is User and user is not None:
            return user
        how = {Tenant: " or --tenant SLUG", User: " or --user USERNAME"}.get(model, "")
        raise CommandError(f"{event_type.name} needs its {label}: give --object ID{how}.")
