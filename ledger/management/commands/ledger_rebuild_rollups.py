from typing import Any

from django.core.management.base import BaseCommand

from ledger.rollups import rollup_differences, rollups_rebuild


class Command(BaseCommand):
    help = (
        "Rebuilds the balance rollup (per seller, account, currency and day) from the ledger's lines, in one "
        "transaction, and says how many rows differed before. The lines are the truth; the rollup is their cache."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        wrong = len(rollup_differences())
        written = rollups_rebuild()
        self.stdout.write(f"Rebuilt the balance rollup from the lines: {written} rows ({wrong} differed before).")
