"""Every write to an order, one module per concern (HackSoft's split of a services module grown big):

- ``create``: a new order, its lines, the stock and discount it reserves, idempotency;
- ``payment_outcomes``: paid, failed, reopened for payment, cancelled;
- ``fulfillment``: each item through its delivery strategy, the buyer's email, the hand-over to an operator;
- ``manual``: what a seller or operator does by hand (reading codes is recorded, status, override, retry);
- ``sweeper``: what lost tasks and lost webhooks left undone;
- ``refunds``: the order's half of a refund.

What an order costs before it exists (the quote, the fee) is ``orders.pricing``. The names below are
the package's public services, importable as ``orders.services.<name>``.
"""

from orders.pricing import CheckoutLine

from .create import CreatedOrder, order_create, order_stock_release, order_stock_reserve_again, request_fingerprint
from .fulfillment import FulfillmentResult, order_fulfill, order_send_delivery_email
from .manual import (
    order_item_override_delivery,
    order_item_replace_and_deliver,
    order_mark_delivered,
    order_retry_delivery,
    order_seller_read,
    order_set_status,
)
from .payment_outcomes import (
    order_cancel,
    order_claim_free,
    order_mark_paid,
    order_mark_paid_externally,
    order_mark_payment_failed,
    order_paid_by,
    order_reopen_for_payment,
)
from .refunds import order_apply_refund, order_refund_create
from .sweeper import SweepResult, orders_sweep

__all__ = [
    "CheckoutLine",
    "CreatedOrder",
    "FulfillmentResult",
    "SweepResult",
    "order_apply_refund",
    "order_cancel",
    "order_claim_free",
    "order_create",
    "order_fulfill",
    "order_item_override_delivery",
    "order_item_replace_and_deliver",
    "order_mark_delivered",
    "order_mark_paid",
    "order_mark_paid_externally",
    "order_mark_payment_failed",
    "order_paid_by",
    "order_refund_create",
    "order_reopen_for_payment",
    "order_retry_delivery",
    "order_seller_read",
    "order_send_delivery_email",
    "order_set_status",
    "order_stock_release",
    "order_stock_reserve_again",
    "orders_sweep",
    "request_fingerprint",
]
