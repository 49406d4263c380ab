"""What payments tells the payouts side about Stripe Connect, without importing it.

Connect's webhooks arrive in payments (which verifies and stores them), but what they mean for a
seller's payouts is the ledger's business, and ``payments`` may never import ``ledger``. So payments
states here what it tells, and the ledger binds an implementation at start-up (``ledger/apps.py``:
``bind_connect_port``), as ``payments.ports`` does for orders. Each method is given identifiers only:
the bound side retrieves the objects from Stripe before it acts (a webhook body is never believed).
"""

from typing import Protocol


class ConnectOutcome:
    """What the payouts side made of an event (the stored event's status)."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    REJECTED = "rejected"


class ConnectPort(Protocol):
    def account_updated(self, *, account_id: str) -> tuple[str, str]:
        """A connected account changed: its state is retrieved and stored. Answers (outcome, note)."""
        ...

    def payout_settled(self, *, account_id: str, stripe_payout_id: str) -> tuple[str, str]:
        """A connected account's payout was paid or failed: the payouts it carried follow what Stripe
        confirms. Answers (outcome, note). Raises ``GatewayUnavailable`` when Stripe cannot be asked."""
        ...


class ConnectPortUnbound(RuntimeError):
    """A Connect event arrived before the ledger app bound its side of the port."""


_bound: ConnectPort | None = None


def bind_connect_port(port: ConnectPort) -> None:
    global _bound
    _bound = port


def connect_port() -> ConnectPort:
    if _bound is None:
        raise ConnectPortUnbound("payments has no payouts side: the ledger app binds one in its ready().")
    return _bound
