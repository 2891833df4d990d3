"""The claim's own partial indexes (models.StoredEvent.Meta), built without locking the outbox.

On PostgreSQL `CREATE INDEX CONCURRENTLY`: the table may hold months of events and the
platform keeps writing to it while the index builds. Elsewhere (SQLite) a plain index.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.operations import AddIndex


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("notifications", "0005_storedevent_translations")]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="storedevent",
            index=models.Index(
                condition=models.Q(position__isnull=True),
                fields=["id"],
                name="event_unnumbered_idx",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="storedevent",
            index=models.Index(
                condition=models.Q(published_at__isnull=True),
                fields=["position"],
                name="event_unpublished_position_idx",
            ),
        ),
    ]
