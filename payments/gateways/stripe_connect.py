"""The Stripe Connect payout rail: Express accounts, their onboarding links, transfers to them and what
their own payouts carried. Every request goes through ``StripeGateway``'s client (``_client`` /
``_call``: the secret key, ``STRIPE_API_BASE``, timeouts, retries with idempotency keys, and Stripe's
errors mapped to ``GatewayUnavailable`` when transient, ``ApplicationError`` 502 when refused).

It knows Stripe, not our payouts: ``ledger`` (above payments) decides what to do with the answers.

Connect webhooks (events of the connected accounts, each naming its ``account``) are signed with their
own endpoint's secret, ``STRIPE_CONNECT_WEBHOOK_SECRET``; ``parse_connect_webhook`` checks it over the
raw body before anything else.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import stripe
from django.conf import settings

from marketplace.core.errors import ApplicationError

from .base import InvalidSignature, event_text
from .stripe import WEBHOOK_TOLERANCE_SECONDS, StripeGateway, _refuse_future_timestamp

# The Connect events we act on; any other is stored and ignored.
CONNECT_EVENTS = frozenset({"account.updated", "payout.paid", "payout.failed"})
# One page of a connected account's balance transactions.
PAGE_SIZE = 100
# Enough pages for any payout (10,000 transfers); a longer one is refused rather than half read.
MAX_PAGES = 100


@dataclass(frozen=True)
class ConnectAccountState:
    """What Stripe says about a connected account, reduced to what payouts need."""

    account_id: str
    status: str  # pending | restricted | enabled
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConnectTransfer:
    transfer_id: str
    destination_payment: str  # the py_ payment it made on the connected account


@dataclass(frozen=True)
class ConnectPayout:
    """A connected account's own payout, as Stripe holds it, with the ``py_`` payments it carried."""

    payout_id: str
    account_id: str
    status: str  # paid | failed | pending | in_transit | canceled
    failure_message: str
    payments: frozenset[str]


@dataclass(frozen=True)
class ConnectWebhookMessage:
    event_id: str
    type: str
    account_id: str
    object_id: str
    payload: dict[str, Any]


def account_state(account: dict[str, Any]) -> ConnectAccountState:
    """``enabled`` when the account can take transfers and pay them out; ``restricted`` when Stripe
    stopped it or needs something past due; ``pending`` while the seller has not finished onboarding."""
    capabilities = account.get("capabilities") or {}
    requirements = account.get("requirements") or {}
    due = sorted(
        {str(item) for item in (requirements.get("currently_due") or []) + (requirements.get("past_due") or [])}
    )
    payouts_enabled = bool(account.get("payouts_enabled"))
    details = bool(account.get("details_submitted"))
    if payouts_enabled and capabilities.get("transfers") == "active":
        status = "enabled"
    elif details or requirements.get("disabled_reason") or requirements.get("past_due"):
        status = "restricted"
    else:
        status = "pending"
    return ConnectAccountState(
        account_id=str(account["id"]),
        status=status,
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=payouts_enabled,
        details_submitted=details,
        requirements_due=due,
    )


class StripeConnectRail(StripeGateway):
    """Stripe's gateway client, used for Connect's endpoints."""

    name = "stripe_connect"

    def account_create(self, *, seller_id: str, email: str, country: str, idempotency_key: str) -> ConnectAccountState:
        params: dict[str, Any] = {
            "type": "express",
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"seller_id": seller_id},
        }
        if country:
            params["country"] = country
        account = self._call(
            lambda client: client.v1.accounts.create(params, {"idempotency_key": idempotency_key}),
            action="create the connected account",
        )
        return account_state(account)

    def account_retrieve(self, *, account_id: str) -> ConnectAccountState:
        account = self._call(lambda client: client.v1.accounts.retrieve(account_id), action="retrieve the account")
        return account_state(account)

    def onboarding_link(self, *, account_id: str, return_url: str, refresh_url: str) -> str:
        """A short-lived, single-use link to Stripe's hosted onboarding (a bearer URL: never stored or logged)."""
        link = self._call(
            lambda client: client.v1.account_links.create(
                {
                    "account": account_id,
                    "type": "account_onboarding",
                    "return_url": return_url,
                    "refresh_url": refresh_url,
                }
            ),
            action="open an onboarding link",
        )
        return str(link["url"])

    def transfer_create(
        self, *, amount: int, currency: str, account_id: str, payout_id: str, seller_id: str
    ) -> ConnectTransfer:
        """One transfer per payout: the payout's id is the idempotency key and the transfer group."""
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "destination": account_id,
            "transfer_group": payout_id,
            "metadata": {"payout_id": payout_id, "seller_id": seller_id},
        }
        transfer = self._call(
            lambda client: client.v1.transfers.create(params, {"idempotency_key": payout_id}),
            action="make the transfer",
        )
        return ConnectTransfer(
            transfer_id=str(transfer["id"]), destination_payment=str(transfer.get("destination_payment") or "")
        )

    def transfer_reverse(self, *, transfer_id: str, payout_id: str) -> str:
        """Takes a transfer's money back from the connected account (the whole of what is left)."""
        reversal = self._call(
            lambda client: client.v1.transfers.reversals.create(
                transfer_id, {"metadata": {"payout_id": payout_id}}, {"idempotency_key": f"{payout_id}:reversal"}
            ),
            action="reverse the transfer",
        )
        return str(reversal["id"])

    def payout_retrieve(self, *, account_id: str, payout_id: str) -> ConnectPayout:
        """The connected account's payout and the ``py_`` payments (our transfers) it carried, listed
        with ``GET /v1/balance_transactions?payout=`` on that account (Stripe's reconciliation of an
        automatic payout)."""
        options = {"stripe_account": account_id}
        payout = self._call(
            lambda client: client.v1.payouts.retrieve(payout_id, {}, options), action="retrieve the payout"
        )
        payments: set[str] = set()
        after: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"payout": payout_id, "type": "payment", "limit": PAGE_SIZE}
            if after:
                params["starting_after"] = after
            page = self._call(
                lambda client, params=params: client.v1.balance_transactions.list(params, options),  # type: ignore[misc]
                action="list the payout's balance transactions",
            )
            rows = page.get("data") or []
            payments.update(str(row.get("source") or "") for row in rows if row.get("source"))
            if not page.get("has_more") or not rows:
                break
            after = str(rows[-1]["id"])
        else:
            raise ApplicationError(
                f"Stripe's payout {payout_id} carries more than {MAX_PAGES * PAGE_SIZE} transactions; "
                "reconcile it by hand.",
                code="gateway_error",
                status_code=502,
            )
        return ConnectPayout(
            payout_id=str(payout["id"]),
            account_id=account_id,
            status=str(payout.get("status") or ""),
            failure_message=str(payout.get("failure_message") or payout.get("failure_code") or ""),
            payments=frozenset(payments),
        )


def connect_rail() -> StripeConnectRail:
    return StripeConnectRail()


def parse_connect_webhook(*, body: bytes, headers: dict[str, str]) -> ConnectWebhookMessage:
    """Checks ``Stripe-Signature`` against ``STRIPE_CONNECT_WEBHOOK_SECRET`` over the raw body, then
    reads the event: its id, type, the connected ``account`` it is about and its object's id. Anything
    else in the body is only a hint (the object is retrieved from Stripe before anything is done)."""
    secret = settings.STRIPE_CONNECT_WEBHOOK_SECRET
    if not secret:
        raise InvalidSignature("STRIPE_CONNECT_WEBHOOK_SECRET is not configured.")
    signature = {k.lower(): v for k, v in headers.items()}.get("stripe-signature", "")
    try:
        stripe.WebhookSignature.verify_header(
            body.decode("utf-8"), signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise InvalidSignature(str(exc)) from exc
    _refuse_future_timestamp(signature)
    try:
        payload = json.loads(body)
        event_id = event_text(payload["id"], field_name="event_id")
        event_type = event_text(payload["type"], field_name="type")
        account_id = event_text(payload.get("account"), field_name="payment_ref")
        obj = payload["data"]["object"]
        if not isinstance(obj, dict):
            raise TypeError("data.object is not an object")
        object_id = event_text(obj.get("id"), field_name="payment_ref")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidSignature(f"Malformed event body: {exc}") from exc
    if not account_id.startswith("acct_"):
        raise InvalidSignature("A Connect event names its connected account (acct_...).")
    return ConnectWebhookMessage(
        event_id=event_id, type=event_type, account_id=account_id, object_id=object_id, payload=payload
    )
