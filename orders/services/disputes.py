"""Disputes, the order's half: what a dispute of the order's payment does to its timeline, the
seller's books and the buyer's access (``payments.disputes.dispute_apply`` calls it through the
port, inside its transaction, with the order's row locked).

The books' rule, written once here (the ledger only moves the figures it is given):
- A dispute of D (at most what the buyer still paid, ``total - refunded``) takes from the seller
  what the order's earnings would drop by if D were refunded: the platform fee follows the money the
  platform keeps, exactly as ``order_apply_refund`` recomputes it. So the seller's part is never
  more than the earnings the seller still holds from the order, and the rest of D is the fee's part.
- Opened: the seller's part moves to ``reserved`` (``Dispute.reserved_amount``); the fee's part is
  noted (``Dispute.fee_amount``) and stays with the platform while the dispute is open.
- Won: the reserve returns to the seller. Lost: the reserve and the fee's part leave the books for
  the buyer's bank; the seller's balance does not move again (it moved when the dispute opened).
- The order's own figures (``seller_earnings``, ``platform_fee``, ``refunded_amount``) do not change:
  a dispute is not a refund. ``ledger_check`` reads disputes beside the orders (``orders/books.py``).
- A dispute of a payment that did not pay the order (one refunded automatically) is on the timeline
  only: that money was never the order's.
- While a dispute is open or lost the order takes no refund (Stripe refuses to refund a disputed
  charge; ``order_refund_create`` answers 409 ``order_disputed``).

The seller's row is locked first — the lock ``payout_create`` takes — so a payout asked for at the
same moment runs wholly before the reserve (and the reserve may take the balance below zero, to be
recovered from later sales) or wholly after it (and cannot pay out the reserved money).
"""

from typing import Any

from ledger.services import ledger_dispute_lost, ledger_dispute_open, ledger_dispute_won
from marketplace.accounts.models import User
from marketplace.core.money import format_money
from orders.lifecycle import order_event_record
from orders.models import Order, OrderEvent
from orders.pricing import platform_fee_for
from orders.services.payment_outcomes import order_paid_by
from payments.models import Dispute

GATEWAY = OrderEvent.Actor.GATEWAY


def dispute_split(*, order: Order, amount: int, seller: Any) -> tuple[int, int]:
    """(the seller's part, the platform fee's part) of a dispute of ``amount`` on ``order``, net of
    the order's other disputes that still hold money (open or lost)."""
    others = Dispute.objects.filter(order=order, reserved_amount__gt=0).exclude(status__in=Dispute.WON_STATUSES)
    taken = sum(d.reserved_amount + d.fee_amount for d in others)
    taken_fee = sum(d.fee_amount for d in others)
    net = max(order.total_amount - order.refunded_amount - taken, 0)
    disputed = min(amount, net)
    fee_now = max(order.platform_fee - taken_fee, 0)
    fee_after = platform_fee_for(net - disputed, seller=seller)
    fee_part = min(max(fee_now - fee_after, 0), disputed)
    return disputed - fee_part, fee_part


def order_apply_dispute(*, order: Order, dispute: Dispute, change: str) -> None:
    seller = User.objects.select_for_update().get(pk=order.seller_id)
    money = format_money(dispute.amount, dispute.currency)
    data = {
        "dispute_id": dispute.id,
        "gateway_dispute_id": dispute.gateway_dispute_id,
        "amount": dispute.amount,
        "status": dispute.status,
    }
    reason = (dispute.reason or "unspecified").replace("_", " ")
    if change == "opened":
        ours = order_paid_by(order) == dispute.payment_id
        if ours:
            dispute.reserved_amount, dispute.fee_amount = dispute_split(
                order=order, amount=dispute.amount, seller=seller
            )
            dispute.save(update_fields=["reserved_amount", "fee_amount", "updated_at"])
            ledger_dispute_open(
                order=order,
                dispute_id=dispute.id,
                amount=dispute.reserved_amount,
                description=f"Dispute of {money}, order {order.order_number} ({reason}): held until it closes",
            )
        due = dispute.evidence_due_by
        held = format_money(dispute.reserved_amount, dispute.currency)
        message = (
            f"The buyer's bank disputed {money} ({reason})."
            + (f" Evidence is due by {due:%Y-%m-%d %H:%M} UTC." if due else "")
            + (f" {held} of the seller's earnings is reserved until it closes." if ours else "")
            + ("" if ours else " It is about a payment that did not pay this order; the books do not change.")
        )
        order_event_record(
            order=order,
            type="dispute_opened",
            actor=GATEWAY,
            message=message,
            data={
                **data,
                "reason": dispute.reason,
                "evidence_due_by": due.isoformat() if due else None,
                "reserved": dispute.reserved_amount,
            },
        )
        if ours and seller.dispute_revokes_access and not order.access_suspended:
            order.access_suspended = True
            order.save(update_fields=["access_suspended", "updated_at"])
            order_event_record(
                order=order,
                type="access_suspended",
                actor=GATEWAY,
                message="The buyer's access is suspended while the dispute is open (the seller's setting).",
                data={"dispute_id": dispute.id},
            )
    elif change == "updated":
        due = dispute.evidence_due_by
        order_event_record(
            order=order,
            type="dispute_updated",
            actor=GATEWAY,
            message=f"The dispute is now {dispute.get_status_display().lower()}"
            + (f"; evidence is due by {due:%Y-%m-%d %H:%M} UTC." if due else "."),
            data={**data, "evidence_due_by": due.isoformat() if due else None},
        )
    elif change == "won":
        ledger_dispute_won(
            order=order,
            dispute_id=dispute.id,
            amount=dispute.reserved_amount,
            description=f"Dispute won, order {order.order_number}: the reserve is released",
        )
        order_event_record(
            order=order,
            type="dispute_won",
            actor=GATEWAY,
            message=f"The dispute of {money} was closed in the seller's favour; "
            f"{format_money(dispute.reserved_amount, dispute.currency)} returns to the seller's balance.",
            data=data,
        )
        still_open = Dispute.objects.filter(order=order, status__in=Dispute.OPEN).exclude(pk=dispute.pk).exists()
        if order.access_suspended and not still_open:
            order.access_suspended = False
            order.save(update_fields=["access_suspended", "updated_at"])
            order_event_record(
                order=order,
                type="access_restored",
                actor=GATEWAY,
                message="The buyer's access is restored: the dispute was won.",
                data={"dispute_id": dispute.id},
            )
    elif change == "lost":
        ledger_dispute_lost(
            order=order,
            dispute_id=dispute.id,
            amount=dispute.reserved_amount,
            fee_amount=dispute.fee_amount,
            description=f"Dispute lost, order {order.order_number}: the reserve went to the buyer's bank",
        )
        order_event_record(
            order=order,
            type="dispute_lost",
            actor=GATEWAY,
            message=f"The dispute of {money} was lost: the buyer's bank keeps it; "
            f"{format_money(dispute.reserved_amount, dispute.currency)} of the seller's reserve is gone.",
            data=data,
        )
    else:
        raise ValueError(f"unknown dispute change {change!r}")


def order_dispute_blocks_refund(order: Order) -> bool:
    """An order with an open or lost dispute takes no refund."""
    return Dispute.objects.filter(order=order).exclude(status__in=Dispute.WON_STATUSES).exists()
