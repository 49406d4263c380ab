"""An order's timeline entry as a sentence a person reads ("The payment was confirmed: the order is
paid."), instead of its event name. The entry's own ``message`` stays beside it as the detail."""

from typing import Any

from .models import OrderStatus

# A move to a status, said from what it means for the seller.
MOVED_TO = {
    OrderStatus.PENDING: "The order is waiting for its payment.",
    OrderStatus.PAID: "The payment was confirmed: the order is paid.",
    OrderStatus.DELIVERED: "Everything in the order was delivered.",
    OrderStatus.PARTIALLY_DELIVERED: "Part of the order was delivered.",
    OrderStatus.NEEDS_ATTENTION: "The order needs your attention: an item could not be delivered.",
    OrderStatus.FAILED: "The payment failed.",
    OrderStatus.CANCELLED: "The order was cancelled.",
    OrderStatus.REFUNDED: "The order was refunded in full.",
    OrderStatus.PARTIALLY_REFUNDED: "Part of the order was refunded.",
}

SENTENCES = {
    "order_created": "The buyer placed the order.",
    "payment_initiated": "A payment was started.",
    "payment_mismatch": "A payment did not match the order and was not applied.",
    "email_sent": "The receipt with the delivery was emailed to the buyer.",
    "email_failed": "The receipt email could not be sent.",
    "receipt_resent": "The receipt was sent again.",
    "refund_email_sent": "The buyer was emailed about the refund.",
    "codes_viewed": "The delivered codes were viewed.",
    "item_fulfilled": "An item was delivered.",
    "item_failed": "An item could not be delivered.",
    "delivery_overridden": "An item's delivery was replaced by hand.",
    "delivery_retry_requested": "Delivery was tried again.",
    "attention_notified": "You were emailed that the order needs attention.",
    "seller_notified": "You were emailed about the order.",
    "sale_notified": "You were emailed about this sale.",
    "webhook_rejected": "A payment notification was refused.",
    "unpayable_payment_refunded": "A payment that came too late was refunded.",
    "unpayable_payment_refund_failed": "A payment that came too late could not be refunded.",
    "refund_pending": "A refund was started.",
    "refund_unapplied": "A refund could not be applied.",
    "sweep_failed": "An unfinished step was found and could not be completed.",
    "access_revoked": "The buyer's access was revoked.",
    "access_suspended": "The buyer's access was suspended during a dispute.",
    "access_restored": "The buyer's access was restored.",
    "dispute_opened": "The buyer's bank opened a dispute.",
    "dispute_updated": "The dispute was updated.",
    "dispute_won": "The dispute was won.",
    "dispute_lost": "The dispute was lost.",
    "license_disabled": "A license key was disabled.",
    "license_enabled": "A license key was enabled.",
    "license_activations_reset": "A license key's activations were reset.",
}


def event_sentence(event: Any) -> str:
    """The sentence for a timeline entry (an ``OrderEvent`` or its dict form)."""
    get = event.get if isinstance(event, dict) else lambda name: getattr(event, name, "")
    kind = str(get("type") or "")
    if kind == "status_changed":
        to_status = str(get("to_status") or "")
        if to_status in MOVED_TO:
            return MOVED_TO[OrderStatus(to_status)]
        return f"The order moved to {to_status.replace('_', ' ')}."
    if kind in SENTENCES:
        return SENTENCES[kind]
    return kind.replace("_", " ").capitalize() + "." if kind else ""
