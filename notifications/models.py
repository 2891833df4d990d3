"""The stored event: the outbox the publisher drains, and the store inbox/replay will read.

One row per event, written in the same transaction as the change that caused it (so a
rolled-back change leaves nothing, and a committed one is never lost), plus one `EventTarget`
row per group it goes to (indexed by group, for "the events of these groups after id N").

Ordering and the late-commit trap (issue 5). `id` is the frame id and increases across all
events, but ids are handed out when a row is inserted, not when its transaction commits: on
PostgreSQL, transaction A may take id 10, B take id 11 and commit first, and a client that saw
11 and then reconnects with last_id=11 would never get 10. SQLite serializes writers, so ids
are commit-ordered there; PostgreSQL needs the hook below.

The hook is `position`: a second, commit-ordered sequence. `notifications.events.outbox.claim()`
takes one lock (`pg_advisory_xact_lock`; SQLite's write lock), and numbers every committed row
that has no position yet in id order, before any of them is published. Because each numbering
transaction sees everything committed before it, a late commit gets a *higher* position than
rows that became visible earlier, whatever its id. Replay translates the client's last_id into
that event's position and never serves `id > last_id`; rows without a position are not yet
visible to replay.

Positions alone are not enough once two publishers run (two server processes, each with its
publisher, batches claimed one after the other): P1 claims position 10, P2 claims 11 and
sends it first; a client that saw 11 and resumes from it must still get 10, which P1 sends
later. Hence the visibility horizon, stamped on a row when it is first claimed (under the claim
lock, before it is sent):

* `replay_from`: the lowest position that was not yet published then (rows too old to be pushed
  live are left out). Every row with a lower position had been published, i.e. sent, before
  this one was sent, so a client that saw this row has seen those (one Redis subscription per
  process delivers in publish order).
* `claimed_at`: the database's clock at that claim (`published_at` is the database's clock too,
  taken after the send), so "published before this row was claimed" compares two readings of one
  clock, never two processes' wall clocks.

Resuming from a row S replays `position > S.position`, plus the rows in
`[S.replay_from, S.position)` not published before S was claimed (published_at null, or at or
after `S.claimed_at` minus a small margin for a clock step): those are the only ones that can
have reached the socket after S. What overlaps (a row in flight during the replay, the margin)
is a duplicate the client drops by `id`; notifications.replay explains how.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import get_language


class StoredEvent(models.Model):
    class Level(models.TextChoices):
        SUCCESS = "success", "Success"
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    id = models.BigAutoField(primary_key=True)  # the frame `id`
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=64)
    category = models.CharField(max_length=16)
    level = models.CharField(max_length=8, choices=Level.choices)
    title = models.CharField(max_length=200)
    message = models.TextField()
    #: {language: {"title", "message"}}: the other languages' texts (catalog Event.translations)
    translations = models.JSONField(default=dict, blank=True)
    data = models.JSONField(default=dict)
    #: socket id of the tab that caused it (toOthers); "" for none
    exclude_socket_id = models.CharField(max_length=48, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    #: commit-ordered sequence for replay (see the module docstring); null until claimed
    position = models.BigIntegerField(null=True, blank=True, unique=True)
    #: null until sent to the channel layer (then the database's time after the send); the
    #: publisher picks up rows where it is null
    published_at = models.DateTimeField(null=True, blank=True)
    #: a publisher holds the row until then (claimed, or backing off after a failure)
    lease_until = models.DateTimeField(null=True, blank=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    #: the visibility horizon (module docstring), set at the first claim: the lowest position
    #: still unpublished then, and the database's time of that claim
    replay_from = models.BigIntegerField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["occurred_at"],
                condition=models.Q(published_at__isnull=True),
                name="event_unpublished_idx",
            ),
            models.Index(fields=["name", "id"], name="event_name_idx"),
            # The claim's two scans (outbox._CLAIM_SQL): unnumbered rows in id order, and the
            # numbered ones still unpublished. Indexes that match them keep the planner on
            # them whatever its statistics say (taken during a backlog, it walked the primary
            # key and the position index through the whole table: 90 ms a claim at 50,000).
            models.Index(
                fields=["id"],
                condition=models.Q(position__isnull=True),
                name="event_unnumbered_idx",
            ),
            models.Index(
                fields=["position"],
                condition=models.Q(published_at__isnull=True),
                name="event_unpublished_position_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.name}"

    @property
    def shown_title(self) -> str:
        """The title in the active language (pages: the inbox, the live feeds)."""
        return self.localized(get_language())[0]

    @property
    def shown_message(self) -> str:
        return self.localized(get_language())[1]

    def localized(self, language: str | None) -> tuple[str, str]:
        """(title, message) in `language` when the event has it, else as stored (English)."""
        text = self.translations.get(language or "", {}) if self.translations else {}
        return text.get("title") or self.title, text.get("message") or self.message

    @property
    def exclude(self) -> str | None:
        return self.exclude_socket_id or None


class EventTarget(models.Model):
    """One group an event goes to, with the roles allowed within it (null: everyone)."""

    event = models.ForeignKey(StoredEvent, on_delete=models.CASCADE, related_name="targets")
    group = models.CharField(max_length=100)
    roles = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["event_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "group"], name="event_target_unique_group")
        ]
        indexes = [models.Index(fields=["group", "event"], name="event_target_group_idx")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.group}"


class InboxState(models.Model):
    """A user's "mark all as read" watermark: events up to this position are read.

    One row per user, so "mark all as read" costs one write however many events there are;
    single reads after it are `NotificationRead` rows (pruned with their events).
    """

    user = models.OneToOneField(
        "accounts.User", on_delete=models.CASCADE, related_name="inbox_state"
    )
    read_up_to = models.BigIntegerField(default=0)  # a StoredEvent.position
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id} read ≤ {self.read_up_to}"


class NotificationRead(models.Model):
    """One user read one stored event (clicked it), above their watermark."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(StoredEvent, on_delete=models.CASCADE, related_name="reads")
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="notification_read_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.event_id}"


from .email_models import OutgoingEmail  # noqa: E402,F401  (the email outbox)
