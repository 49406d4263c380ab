"""Real concurrent transactions for the campaign's money-path tests (PostgreSQL: row locks only show
between separate connections, never inside one test transaction)."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_concurrently(count: int, func: Callable[[int], Any]) -> list[Any]:
    """Each call in its own thread with its own database connection, released together; returns each
    call's result, or the exception it raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = func(index)
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
