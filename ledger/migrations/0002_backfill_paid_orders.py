"""Writes the books of every order paid before the ledger existed (paid, delivered, refunded or partly
refunded), from the order's stored figures: its sale, the fee it keeps now, and one refund per
succeeded refund (any rest of ``refunded_amount`` as one more). The fee that earlier refunds returned is
no longer in the order, so the fee transaction is the fee it keeps: the seller's balance, the platform's
fees and the clearing account end exactly at the order's ``seller_earnings``, ``platform_fee`` and
``total_amount - refunded_amount``. Idempotent: an order that already has its sale is skipped."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

from marketplace.core.ids import make_id

# Frozen here as it is today (orders.lifecycle.PAID_STATUSES): a migration never follows the code.
PAID_STATUSES = ["paid", "delivered", "partially_delivered", "needs_attention", "partially_refunded", "refunded"]


def _money(amount, currency):
    from marketplace.core.money import format_money

    return format_money(amount, currency)


def backfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Refund = apps.get_model("payments", "Refund")
    BalanceTransaction = apps.get_model("ledger", "BalanceTransaction")
    LedgerLine = apps.get_model("ledger", "LedgerLine")
    done = set(BalanceTransaction.objects.filter(type="sale").values_list("source_id", flat=True))
    orders = (
        Order.objects.filter(status__in=PAID_STATUSES, paid_at__isnull=False, total_amount__gt=0)
        .select_related("seller")
        .order_by("paid_at", "id")
    )
    now = timezone.now()
    for order in orders.iterator(chunk_size=500):
        if order.id in done:
            continue
        days = order.seller.payout_hold_days
        available_on = order.paid_at + timedelta(days=settings.PAYOUT_HOLD_DAYS if days is None else days)
        events = [("sale", order.id, order.paid_at, f"Sale, order {order.order_number}",
                   [("gateway_clearing", -order.total_amount, False), ("seller_balance", order.total_amount, True)])]
        if order.platform_fee:
            events.append(("platform_fee", order.id, order.paid_at, f"Platform fee, order {order.order_number}",
                           [("seller_balance", -order.platform_fee, True),
                            ("platform_fees", order.platform_fee, False)]))
        left = order.refunded_amount
        refunds = Refund.objects.filter(order_id=order.id, status="succeeded").order_by("created_at", "id")
        parts = []
        for refund in refunds:
            take = min(refund.amount, left)
            if take > 0:
                parts.append((refund.id, take, refund.created_at))
                left -= take
        if left > 0:
            parts.append((f"{order.id}:refunded", left, now))
        for source_id, amount, at in parts:
            events.append(("refund", source_id, at, f"Refund of {_money(amount, order.currency)}, "
                           f"order {order.order_number}",
                           [("seller_balance", -amount, True), ("gateway_clearing", amount, False)]))
        rows, lines = [], []
        for type_, source_id, at, description, legs in events:
            btx = BalanceTransaction(
                id=make_id("btx"), type=type_, seller_id=order.seller_id, currency=order.currency,
                amount=sum(a for account, a, _ in legs if account == "seller_balance"), source_id=source_id,
                order_id=order.id, payout_id="", description=description[:500], available_on=available_on,
                created_at=at,
            )
            rows.append(btx)
            lines += [
                LedgerLine(transaction=btx, account=account, seller_id=order.seller_id if own else None,
                           currency=order.currency, amount=a, available_on=available_on)
                for account, a, own in legs if a
            ]
        BalanceTransaction.objects.bulk_create(rows)
        LedgerLine.objects.bulk_create(lines)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0001_initial"),
        ("accounts", "0005_user_payout_hold_days"),
        ("orders", "0006_order_seller_status_created_index"),
        ("payments", "0004_one_open_payment_and_refund_keys_per_seller"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
