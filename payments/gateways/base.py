"""The interface every payment gateway implements (sandbox now, Stripe next)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orders.models import Order
    from payments.models import Payment


class InvalidSignature(Exception):
    """The webhook's signature is missing, wrong, or too old."""


class GatewayUnavailable(Exception):
    """The gateway did not answer; worth retrying later."""


@dataclass
class Checkout:
    """What a gateway answers when a payment is opened."""

    redirect_url: str
    transaction_id: str = ""


@dataclass
class GatewayStatus:
    """The gateway's own, server-side word on a payment."""

    status: str  # pending | succeeded | failed
    amount: int
    currency: str
    transaction_id: str = ""


@dataclass
class WebhookMessage:
    event_id: str
    type: str
    payment_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    # Set for refund events (e.g. Stripe's charge.refunded): the total refunded so far, minor units.
    refunded_total: int | None = None


@dataclass
class GatewayRefund:
    """What the gateway answered for a refund request."""

    refund_id: str
    status: str  # succeeded | pending | failed
    amount: int
    failure_reason: str = ""


class PaymentGateway(ABC):
    name: str

    @abstractmethod
    def create_checkout(self, *, payment: "Payment", order: "Order", return_url: str) -> Checkout: ...

    @abstractmethod
    def retrieve(self, *, payment: "Payment") -> GatewayStatus:
        """Asks the gateway server-side; never trusts what a webhook says."""
        ...

    @abstractmethod
    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> WebhookMessage:
        """Verifies the signature over the raw body, then parses it. Raises InvalidSignature."""
        ...

    @abstractmethod
    def refund(self, *, payment: "Payment", amount: int, reason: str, idempotency_key: str) -> GatewayRefund:
        """Returns money to the buyer. The idempotency key makes a retried request refund once."""
        ...
