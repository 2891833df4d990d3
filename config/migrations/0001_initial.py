"""The periodic runner's lease table, which the runner used to create itself at run time.

The table is created with the very statement the old runner ran (CREATE TABLE IF NOT EXISTS),
so a database where the old code already made it migrates without touching it, a fresh one gets
the same table, and an old server still running during a deploy cannot make this step fail.
The state is the model's (config/models.py); `makemigrations --check` compares against it.
"""

from django.db import migrations, models

CREATE = (
    "CREATE TABLE IF NOT EXISTS periodic_lease ("
    "name VARCHAR(200) PRIMARY KEY, holder VARCHAR(200) NOT NULL, "
    "next_run DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION NOT NULL)"
)


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(CREATE, reverse_sql="DROP TABLE IF EXISTS periodic_lease"),
            ],
            state_operations=[
                migrations.CreateModel(
                    name="PeriodicLease",
                    fields=[
                        (
                            "name",
                            models.CharField(max_length=200, primary_key=True, serialize=False),
                        ),
                        ("holder", models.CharField(max_length=200)),
                        ("next_run", models.FloatField()),
                        ("lease_until", models.FloatField()),
                    ],
                    options={"db_table": "periodic_lease"},
                ),
            ],
        ),
    ]
