"""Disputes (chargebacks): the gateway's word on a buyer's bank taking a payment back.

``dispute_apply`` takes a dispute as the gateway itself answered it (``retrieve_dispute``; the
webhook only says *which* dispute changed) and stores it once per gateway dispute id. What it means
for the order — its timeline, the seller's ledger (the reserve), the buyer's access — is the order
side's, through ``ports.order_port().apply_dispute``, in the same database transaction.

A dispute goes: opened (any open status) → updated (its status or evidence date moved) → won
(``won``, or ``warning_closed``: an inquiry that never became a chargeback) or lost. A closed
dispute is final: a later or replayed event about it changes nothing. A dispute first seen already
closed is applied as opened, then closed, so its books tell the whole story.
"""

from django.db import transaction
from django.utils import timezone

from .gateways.base import GatewayDispute
from .models import Dispute, Payment
from .ports import order_port


class DisputeChange:
    OPENED = "opened"
    UPDATED = "updated"
    WON = "won"
    LOST = "lost"


def dispute_apply(*, payment: Payment, confirmed: GatewayDispute) -> Dispute:
    """Stores the gateway's dispute for ``payment`` and tells the order side each change, once."""
    orders = order_port()
    with transaction.atomic():
        order = orders.lock(order_id=payment.order_id)
        dispute = (
            Dispute.objects.select_for_update().filter(gateway=payment.gateway, gateway_dispute_id=confirmed.id).first()
        )
        changes: list[str] = []
        if dispute is None:
            dispute = Dispute.objects.create(
                gateway=payment.gateway,
                gateway_dispute_id=confirmed.id,
                payment=payment,
                order_id=payment.order_id,
                seller_id=order.seller_id,
                amount=confirmed.amount,
                currency=confirmed.currency,
                status=confirmed.status,
                reason=confirmed.reason,
                evidence_due_by=confirmed.due_by,
            )
            changes.append(DisputeChange.OPENED)
        elif not dispute.is_open:
            return dispute  # final: nothing moves a closed dispute
        elif (dispute.status, dispute.evidence_due_by, dispute.reason) != (
            confirmed.status,
            confirmed.due_by,
            confirmed.reason,
        ):
            dispute.status, dispute.evidence_due_by, dispute.reason = (
                confirmed.status,
                confirmed.due_by,
                confirmed.reason,
            )
            if dispute.is_open:
                changes.append(DisputeChange.UPDATED)
            dispute.save(update_fields=["status", "evidence_due_by", "reason", "updated_at"])
        if not dispute.is_open:
            changes.append(DisputeChange.WON if dispute.outcome == "won" else DisputeChange.LOST)
            dispute.closed_at = timezone.now()
            dispute.save(update_fields=["closed_at", "updated_at"])
        for change in changes:
            orders.apply_dispute(order=order, dispute=dispute, change=change)
    return dispute
