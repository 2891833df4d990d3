"""Per-event cost of the outbox claim + settle, with and without the replay horizon query (A/B).

    .venv/bin/python manage.py shell < bench/claim_cost.py

Runs against DATABASE_URL (use a scratch database: it writes rows to group tenant.999999 and
deletes them at the end). Figures: bench/RESULTS.md, section 4.
"""

import statistics
import time

from notifications.events import outbox as publisher
from notifications.models import EventTarget, StoredEvent


def one():
    e = StoredEvent.objects.create(
        name="SystemNotification", category="system", level="info", title="t", message="m"
    )
    EventTarget.objects.create(event=e, group="tenant.999999")
    t = time.perf_counter()
    rows = publisher.claim(ids=[e.pk])
    publisher.settle([r.pk for r in rows], [])
    return time.perf_counter() - t


real = publisher._unpublished_floor
results = {"with horizon": [], "without (floor query skipped)": []}
for _round in range(6):
    for name in results:
        publisher._unpublished_floor = real if name == "with horizon" else (lambda now, batch: None)
        samples = [one() for _ in range(100)]
        results[name].append(statistics.median(samples) * 1000)
publisher._unpublished_floor = real
for name, meds in results.items():
    print(
        f"{name}: median per claim+settle {statistics.median(meds):.2f} ms"
        f" (round medians {', '.join(f'{m:.2f}' for m in meds)})"
    )
print("rows in table:", StoredEvent.objects.count())
StoredEvent.objects.filter(targets__group="tenant.999999").delete()
