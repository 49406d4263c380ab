from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders.books import ledger_differences


class Command(BaseCommand):
    help = (
        "Proves that every seller's ledger agrees with its orders, refunds and payouts: each transaction balances, "
        "each paid order's books equal its stored figures, each payout's its status, each balance its orders' "
        "earnings less its payouts. Exits 1 "
        "naming every difference otherwise."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_differences()
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"The ledger disagrees with the orders in {len(problems)} place(s).")
        self.stdout.write("The ledger agrees with every order, refund and payout.")
