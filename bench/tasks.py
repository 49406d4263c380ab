"""The no-op task that is the baseline of ``bench_paid_to_delivered``. The benchmark's worker
imports this module (``celery worker -I bench.tasks``); no other worker does."""

import time

from celery import shared_task


@shared_task(name="bench.noop", ignore_result=False)
def noop() -> float:
    """Does nothing but say when it ran (the worker's clock, the same machine's as the sender's)."""
    return time.time()
