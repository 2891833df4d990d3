"""The project's own table: the lease row of each periodic task (config/periodic.py)."""

from __future__ import annotations

from django.db import models


class PeriodicLease(models.Model):
    """One row per task of PERIODIC_TASKS; claimed and released by config/periodic.py's SQL.

    Times are Unix seconds (floats), as the runner compares them with `time.time()`. The table
    name predates this model: the runner used to create it itself (migration 0001 adopts it).
    """

    name = models.CharField(max_length=200, primary_key=True)
    holder = models.CharField(max_length=200)
    next_run = models.FloatField()
    lease_until = models.FloatField()

    class Meta:
        db_table = "periodic_lease"

    def __str__(self) -> str:
        return self.name
