"""The interface every payment gateway implements (sandbox now, Stripe next)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
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

    status: str  # pending | succeeded | failed
    amount: int
    currency: str
    transaction_id: str = ""
    risk: str = ""


@dataclass
class WebhookMessage:
    event_id: str
    type: str
    payment_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    # Set for refund events (e.g. Stripe's charge.refunded): the total refunded so far, minor units.
    refunded_total: int | None = None


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
    needs_capture: bool = False
    browser_return_only: bool = False

    @abstractmethod
    def create_checkout(self, *, payment: Payment, order: PayableOrder, return_url: str) -> Checkout: ...

    @abstractmethod
    def retrieve(self, *, payment: Payment) -> GatewayStatus:
        """Asks the gateway server-side; never trusts what a webhook says."""
        ...

    def capture(self, *, payment: Payment) -> GatewayStatus:
        raise NotImplementedError

    @abstractmethod
    def retrieve_refunded(self, *, payment: Payment) -> int:
        """The gateway's own, server-side word on how much of the payment is refunded so far (minor
        units): what a refund webhook claims is believed only up to this."""
        ...

    @abstractmethod
    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> WebhookMessage:
        """Verifies the signature over the raw body, then parses it. Raises InvalidSignature."""
        ...

    @abstractmethod
    def refund(self, *, payment: Payment, amount: int, reason: str, idempotency_key: str) -> GatewayRefund:
        """Returns money to the buyer. The idempotency key makes a retried request refund once."""
        ...
