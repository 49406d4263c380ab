"""What payments needs from the order side, without importing it.

Payments sits below orders: a gateway's word (paid, declined, refunded) must reach the order, but
``payments`` may never import ``orders`` (that circle is what held ~100 imports inside function bodies
together). So payments states here, once, what it tells and asks the order side, and the orders app
binds an implementation at start-up (``orders/apps.py``: ``bind_order_port``), as Saleor's payment
interface and Polar's service boundaries do. Payments reads an order through ``PayableOrder`` and
never compares its status itself: the port answers the questions that depend on the lifecycle.
"""

from datetime import datetime
from typing import Any, Protocol


class OrderActor:
    """Who did something, as the order's timeline records it (the values of ``OrderEvent.Actor``)."""

    SYSTEM = "system"
    BUYER = "buyer"
    GATEWAY = "gateway"


class PayableOrder(Protocol):
    """The order as payments and its gateways read it (``Payment.order`` is one)."""

    @property
    def pk(self) -> Any: ...
    @property
    def id(self) -> Any: ...
    @property
    def order_number(self) -> Any: ...
    @property
    def status(self) -> Any: ...
    @property
    def seller_id(self) -> Any: ...
    @property
    def seller(self) -> Any: ...
    @property
    def product(self) -> Any: ...
    @property
    def items(self) -> Any: ...
    @property
    def payments(self) -> Any: ...
    @property
    def buyer_email(self) -> Any: ...
    @property
    def currency(self) -> Any: ...
    @property
    def total_amount(self) -> Any: ...
    @property
    def refunded_amount(self) -> Any: ...
    @property
    def expires_at(self) -> datetime | None: ...

    def refresh_from_db(self) -> None: ...


class OrderPort(Protocol):
    """Everything payments tells or asks the order side. Every method runs in the caller's transaction."""

    def lock(self, *, order_id: str) -> PayableOrder:
        """The order, its row locked until the current transaction ends."""
        ...

    def can_take_payment(self, order: PayableOrder) -> bool:
        """Whether a payment may be opened for the order (it is unpaid: pending, or failed and retried)."""
        ...

    def awaiting_payment(self, order: PayableOrder) -> bool:
        """Whether the order waits for its payment (pending) — a gateway's late word may still pay it."""
        ...

    def can_take_refund(self, order: PayableOrder) -> bool:
        """Whether the order was paid and still holds money to return."""
        ...

    def reopen_for_payment(self, *, order: PayableOrder) -> PayableOrder:
        """Before a new payment opens: a failed order becomes pending again (its stock reserved
        again, or ``OutOfStock``); a pending one is answered as it is."""
        ...

    def paid_by(self, order: PayableOrder) -> str | None:
        """The id of the payment that paid the order, if one did."""
        ...

    def mark_paid(self, *, order_id: str, payment_id: str, message: str, risk: str = "") -> None:
        """The gateway confirmed the payment: the order is paid by it (or the payment is refunded
        automatically when the order can no longer take it). ``risk`` (the gateway's words, when it
        flags the payment as risky): the paid order waits in ``needs_attention`` for an operator
        instead of being delivered."""
        ...

    def mark_payment_failed(self, *, order_id: str, payment_id: str, reason: str) -> None:
        """The gateway declined the payment: a pending order fails and releases its stock."""
        ...

    def apply_refund(self, *, order_id: str, refund: Any, user: Any, actor: str) -> None:
        """The gateway returned ``refund`` (a succeeded ``Refund`` of the payment that paid the
        order): the order's books, status and access follow."""
        ...

    def record_event(
        self, *, order: PayableOrder, type: str, message: str, actor: str = OrderActor.SYSTEM, data: Any = None
    ) -> None:
        """Writes an entry on the order's timeline."""
        ...

    def apply_dispute(self, *, order: PayableOrder, dispute: Any, change: str) -> None:
        """A dispute of the order's payment (a ``payments.Dispute``, the order locked by the caller)
        was opened, updated, won or lost (``change``): its timeline, books and access follow."""
        ...


class OrderPortUnbound(RuntimeError):
    """Payments was used before the orders app bound its side of the port."""


_bound: OrderPort | None = None


def bind_order_port(port: OrderPort) -> None:
    """Binds the order side (the orders app does, in its ``ready()``); a later binding replaces it."""
    global _bound
    _bound = port


def order_port() -> OrderPort:
    """The bound order side, or ``OrderPortUnbound`` when no app has bound one (``orders`` is not in
    ``INSTALLED_APPS``, or this runs before Django's app registry is ready)."""
    if _bound is None:
        raise OrderPortUnbound(
            "payments has no order side: the orders app binds one in its ready() (payments.ports.bind_order_port)."
        )
    return _bound
