"""The interface every payment gateway implements (sandbox, Stripe, bKash, SSLCommerz).

Where gateways' flows differ, the interface says so with flags instead of special cases in the order
code: ``needs_capture`` (the server must execute an approved payment: bKash), ``browser_return_only``
(no signed webhook; the buyer's unsigned browser return and the sweeper's status queries are the only
signals: bKash), and ``GatewayStatus.risk`` (a payment the gateway flags as risky is held for an
operator instead of delivered: SSLCommerz)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from payments.models import Payment, WebhookEvent
from payments.ports import PayableOrder


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

    # pending | approved | succeeded | failed. ``approved``: open at the gateway and waiting for our
    # ``capture`` (only a ``needs_capture`` gateway answers it); it is not paid until captured.
    status: str
    amount: int
    currency: str
    transaction_id: str = ""
    # The gateway's own echo of which payment of ours this is (bKash's merchantInvoiceNumber,
    # SSLCommerz's tran_id); when given, it must be the payment's id or the payment is not paid.
    reference: str = ""
    # Non-empty: the gateway flags the payment as risky, in its words (SSLCommerz's risk level and
    # title). A risky payment still pays the order, which then waits in ``needs_attention`` for an
    # operator instead of delivering. Empty: not flagged.
    risk: str = ""


@dataclass
class WebhookMessage:
    event_id: str
    type: str
    payment_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    # Set for refund events (e.g. Stripe's charge.refunded): the total refunded so far, minor units.
    refunded_total: int | None = None
    # Set for dispute events (Stripe's charge.dispute.*): the gateway's dispute id, to retrieve.
    dispute_id: str | None = None


@dataclass(frozen=True)
class GatewayDispute:
    """The gateway's own, server-side word on a dispute (what ``retrieve_dispute`` answers)."""

    id: str
    payment_intent: str
    amount: int
    currency: str
    status: str
    reason: str
    due_by: datetime | None


def event_text(value: Any, *, field_name: str) -> str:
    """An identifier from an incoming event (its id, type, or payment reference): a non-empty string
    that fits the ``WebhookEvent`` column it is stored in, or ``TypeError`` (a malformed event)."""
    limit = getattr(WebhookEvent._meta.get_field(field_name), "max_length", None)
    if not isinstance(value, str) or not value or (limit is not None and len(value) > limit):
        raise TypeError(f"{field_name} is not an identifier")
    return value


def optional_event_text(value: Any, *, field_name: str) -> str | None:
    return None if value in (None, "") else event_text(value, field_name=field_name)


def event_amount(value: Any, *, name: str) -> int | None:
    """An amount in minor units from an incoming event: a whole number ≥ 0, None when absent."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise TypeError(f"{name} is not a whole number")
    return value


@dataclass
class GatewayRefund:
    """What the gateway answered for a refund request."""

    refund_id: str
    status: str  # succeeded | pending | failed
    amount: int
    failure_reason: str = ""


class PaymentGateway(ABC):
    name: str
    # Whether ``create_checkout`` answers in process, without a network call (the sandbox, whose
    # own side lives in this database). Such a gateway may be asked inside the order's transaction;
    # a remote one (Stripe) is asked only after the payment row is committed, so that a slow gateway
    # never holds a transaction open.
    opens_in_process: bool = False
    # Whether an approved payment is only money once the server executes it (``capture``): bKash's
    # Tokenized Checkout. Asked after the buyer returns, and by the sweeper for open payments.
    needs_capture: bool = False
    # Whether the gateway's only signal is the buyer's browser return (unsigned): nothing in it is
    # trusted beyond an id to look up; the gateway is always asked server-side (``retrieve``/``capture``).
    browser_return_only: bool = False
    # The currencies the gateway takes (ISO 4217); empty: any. Another currency's order cannot
    # choose it (400 on ``payment_method``, nothing created).
    currencies: frozenset[str] = frozenset()

    @abstractmethod
    def create_checkout(self, *, payment: Payment, order: PayableOrder, return_url: str) -> Checkout: ...

    @abstractmethod
    def retrieve(self, *, payment: Payment) -> GatewayStatus:
        """Asks the gateway server-side; never trusts what a webhook says."""
        ...

    def capture(self, *, payment: Payment) -> GatewayStatus:
        """Executes an approved payment server-side, then answers the gateway's own word on it (as
        ``retrieve`` does). Safe to repeat: an executed payment is answered as it is. Only for a
        gateway with ``needs_capture``. Raises ``GatewayUnavailable`` when the gateway does not answer."""
        raise NotImplementedError(f"{self.name} has no capture step")

    @abstractmethod
    def retrieve_refunded(self, *, payment: Payment) -> int:
        """The gateway's own, server-side word on how much of the payment is refunded so far (minor
        units): what a refund webhook claims is believed only up to this."""
        ...

    @abstractmethod
    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> WebhookMessage:
        """Verifies the signature over the raw body, then parses it. Raises InvalidSignature."""
        ...

    def retrieve_dispute(self, *, dispute_id: str) -> GatewayDispute:
        """The gateway's own word on a dispute. Only gateways whose webhooks report disputes have one."""
        raise NotImplementedError(f"{self.name} does not report disputes.")

    @abstractmethod
    def refund(self, *, payment: Payment, amount: int, reason: str, idempotency_key: str) -> GatewayRefund:
        """Returns money to the buyer. The idempotency key makes a retried request refund once."""
        ...
