"""Stripe, through Checkout Sessions and the official ``stripe`` library.

- A payment opens a Checkout Session (idempotency key = the payment's id) with the order's items,
  the buyer's email and ``{order_id, payment_id}`` in the metadata of both the session and its
  PaymentIntent, so that every later event can be traced back to our payment.
- Webhooks are verified with ``Stripe-Signature`` and ``STRIPE_WEBHOOK_SECRET``, and believed only
  after the session itself has been retrieved (re-verification).
- ``Payment.transaction_id`` holds the session id (``cs_...``) until the payment is confirmed, then
  the PaymentIntent id (``pi_...``); a session is found from either.
- Refunds go through the Refunds API against the PaymentIntent, with the caller's idempotency key.

``STRIPE_API_BASE`` points the client somewhere other than api.stripe.com (the tests' local fake).
"""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import stripe
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from marketplace.core.errors import ApplicationError
from payments.models import Payment

from .base import (
    Checkout,
    GatewayDispute,
    GatewayRefund,
    GatewayStatus,
    GatewayUnavailable,
    InvalidSignature,
    PaymentGateway,
    WebhookMessage,
    event_amount,
    event_text,
    optional_event_text,
)

# Stripe refuses to deliver (or accepts) signatures older than this; we also refuse ones this far ahead.
WEBHOOK_TOLERANCE_SECONDS = 300
# Stripe lets a Checkout Session live between 30 minutes and 24 hours.
SESSION_MIN_LIFETIME = timedelta(minutes=31)
SESSION_MAX_LIFETIME = timedelta(hours=23, minutes=59)
# Events that name a Checkout Session; everything they say is re-verified by retrieving it.
SESSION_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)
# Events that name a dispute; what they say is believed only after the dispute is retrieved.
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
_DISPUTE_STATUSES = frozenset(
    {
        "warning_needs_response",
        "warning_under_review",
        "warning_closed",
        "needs_response",
        "under_review",
        "won",
        "lost",
    }
)
_DISPUTE_ID = re.compile(r"(dp|du)_[A-Za-z0-9_]{1,190}")
_INTENT_ID = re.compile(r"pi_[A-Za-z0-9_]{1,190}")
# A completed session whose PaymentIntent is back to one of these will not be paid (e.g. a failed bank debit).
_INTENT_FAILED = frozenset({"requires_payment_method", "canceled"})
_REFUND_STATUS = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}
# Stripe's own refund reasons; any other reason travels in the refund's metadata only.
_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


class StripeGateway(PaymentGateway):
    name = "stripe"
    # Stripe's own default. Safe for POSTs: every one carries an idempotency key.
    max_network_retries = 2
    timeout_seconds = 20

    # --- Opening a payment ---------------------------------------------------------------------

    def create_checkout(self, *, payment: Any, order: Any, return_url: str) -> Checkout:
        metadata = {"order_id": str(order.id), "payment_id": str(payment.id)}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": _line_items(payment=payment, order=order),
            "customer_email": order.buyer_email,
            "success_url": return_url,
            "cancel_url": settings.SITE_URL + reverse("checkout:page", args=[order.product.slug]),
            "client_reference_id": str(payment.id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
        expires_at = _session_expiry(order)
        if expires_at is not None:
            params["expires_at"] = expires_at
        session = self._call(
            lambda client: client.v1.checkout.sessions.create(params, {"idempotency_key": str(payment.id)}),
            action="open a Checkout Session",
        )
        return Checkout(redirect_url=session["url"], transaction_id=session["id"])

    # --- Its true state ------------------------------------------------------------------------

    def retrieve(self, *, payment: Any) -> GatewayStatus:
        session = self._session_for(payment)
        if session is None:
            return GatewayStatus("failed", payment.amount, payment.currency)
        owner = (session.get("metadata") or {}).get("payment_id") or session.get("client_reference_id")
        if owner and owner != str(payment.id):
            raise ApplicationError(
                f"Stripe's session {session.get('id')} belongs to another payment.",
                code="gateway_error",
                status_code=502,
            )
        intent = session.get("payment_intent")
        intent_id = intent.get("id", "") if isinstance(intent, dict) else (intent or "")
        intent_status = intent.get("status", "") if isinstance(intent, dict) else ""
        if session.get("status") == "complete" and session.get("payment_status") == "paid":
            status = "succeeded"
        elif session.get("status") == "expired":
            status = "failed"
        elif session.get("status") == "complete" and intent_status in _INTENT_FAILED:
            status = "failed"  # checkout.session.async_payment_failed: the debit was refused
        else:
            status = "pending"  # open, or complete and still processing an asynchronous payment
        return GatewayStatus(
            status=status,
            amount=int(session.get("amount_total") or 0),
            currency=str(session.get("currency") or "").upper(),
            transaction_id=intent_id,
        )

    def retrieve_refunded(self, *, payment: Any) -> int:
        """The PaymentIntent's charge, as Stripe holds it: ``amount_refunded``."""
        intent_id = self._intent_id(payment)
        if not intent_id:
            return 0  # never charged: nothing can have been refunded
        intent = self._call(
            lambda client: client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]}),
            action="retrieve the PaymentIntent",
        )
        owner = (intent.get("metadata") or {}).get("payment_id")
        if owner and owner != str(payment.id):
            raise ApplicationError(
                f"Stripe's PaymentIntent {intent_id} belongs to another payment.", code="gateway_error", status_code=502
            )
        charge = intent.get("latest_charge")
        return int(charge.get("amount_refunded") or 0) if isinstance(charge, dict) else 0

    def _intent_id(self, payment: Any) -> str:
        if str(payment.transaction_id).startswith("pi_"):
            return str(payment.transaction_id)
        session = self._session_for(payment)
        intent = (session or {}).get("payment_intent")
        return str((intent.get("id", "") if isinstance(intent, dict) else intent) or "")

    def _session_for(self, payment: Any) -> dict[str, Any] | None:
        reference = payment.transaction_id or ""
        if reference.startswith("cs_"):
            return self._call(
                lambda client: client.v1.checkout.sessions.retrieve(reference, {"expand": ["payment_intent"]}),
                action="retrieve the Checkout Session",
            )
        if reference.startswith("pi_"):
            return self._session_by_intent(reference)
        return None  # no session was ever opened for this payment

    def _session_by_intent(self, intent_id: str) -> dict[str, Any] | None:
        listing = self._call(
            lambda client: client.v1.checkout.sessions.list(
                {"payment_intent": intent_id, "limit": 1, "expand": ["data.payment_intent"]}
            ),
            action="find the Checkout Session of a PaymentIntent",
        )
        sessions = listing.get("data") or []
        return sessions[0] if sessions else None

    # --- Webhooks ------------------------------------------------------------------------------

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> WebhookMessage:
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            raise InvalidSignature("STRIPE_WEBHOOK_SECRET is not configured.")
        signature = {k.lower(): v for k, v in headers.items()}.get("stripe-signature", "")
        try:
            # The signature alone; the body is parsed below, where any shape of JSON is a clear refusal
            # (stripe's construct_event assumes an object and fails on ``null`` or a list).
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"), signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:  # ValueError: the body is not UTF-8
            raise InvalidSignature(str(exc)) from exc
        _refuse_future_timestamp(signature)
        try:
            payload = json.loads(body)
            event_id = event_text(payload["id"], field_name="event_id")
            event_type = event_text(payload["type"], field_name="type")
            obj = payload["data"]["object"]
            if not isinstance(obj, dict):
                raise TypeError("data.object is not an object")
            metadata = obj.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise TypeError("metadata is not an object")
            if event_type in SESSION_EVENTS:
                payment_id = optional_event_text(
                    metadata.get("payment_id") or obj.get("client_reference_id") or None, field_name="payment_ref"
                )
                return WebhookMessage(event_id=event_id, type=event_type, payment_id=payment_id, payload=payload)
            if event_type == "charge.refunded":
                refunded = event_amount(obj.get("amount_refunded") or 0, name="amount_refunded")
                # The payment reference comes from one of these: each must be an identifier.
                optional_event_text(metadata.get("payment_id"), field_name="payment_ref")
                optional_event_text(obj.get("payment_intent"), field_name="payment_ref")
                return WebhookMessage(
                    event_id=event_id,
                    type=event_type,
                    payment_id=self._payment_for_charge(obj),
                    payload=payload,
                    refunded_total=refunded,
                )
            if event_type in DISPUTE_EVENTS:
                dispute_id = dispute_ref(payload)
                intent_id = optional_event_text(obj.get("payment_intent"), field_name="payment_ref")
                if intent_id is not None and not _INTENT_ID.fullmatch(intent_id):
                    raise TypeError("payment_intent is not a PaymentIntent id")
                # The money and status in the body are not read: the dispute is retrieved from Stripe.
                return WebhookMessage(
                    event_id=event_id,
                    type=event_type,
                    payment_id=self._payment_for_intent(intent_id),
                    payload=payload,
                    dispute_id=dispute_id,
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidSignature(f"Malformed event body: {exc}") from exc
        return WebhookMessage(event_id=event_id, type=event_type, payment_id=None, payload=payload)

    def _payment_for_intent(self, intent_id: str | None) -> str | None:
        """Our payment whose confirmed PaymentIntent is disputed (a disputed charge was paid long
        before, so its payment holds the ``pi_`` id); None when it is not ours."""
        if not intent_id:
            return None
        payment = Payment.objects.filter(gateway=self.name, transaction_id=intent_id).only("id").first()
        return str(payment.id) if payment is not None else None

    # --- Disputes ------------------------------------------------------------------------------

    def retrieve_dispute(self, *, dispute_id: str) -> GatewayDispute:
        """``GET /v1/disputes/{id}``: the dispute as Stripe holds it. A shape we do not expect is a
        refusal (``ApplicationError``), never believed."""
        if not _DISPUTE_ID.fullmatch(dispute_id):
            raise ApplicationError("Not a Stripe dispute id.", code="gateway_error", status_code=502)
        found = self._call(lambda client: client.v1.disputes.retrieve(dispute_id), action="retrieve the dispute")
        try:
            amount = found["amount"]
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                raise TypeError("amount")
            status = str(found["status"])
            if status not in _DISPUTE_STATUSES:
                raise TypeError("status")
            intent = found.get("payment_intent")
            intent_id = intent.get("id") if isinstance(intent, dict) else intent
            due = (found.get("evidence_details") or {}).get("due_by")
            return GatewayDispute(
                id=str(found["id"]),
                payment_intent=str(intent_id or ""),
                amount=amount,
                currency=str(found["currency"]).upper(),
                status=status,
                reason=str(found.get("reason") or "")[:64],
                due_by=datetime.fromtimestamp(int(due), tz=UTC) if due else None,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ApplicationError(
                f"Stripe answered a dispute we cannot read ({exc}).", code="gateway_error", status_code=502
            ) from exc

    def _payment_for_charge(self, charge: dict[str, Any]) -> str | None:
        """Our payment id for a charge: its metadata, else the payment that holds its PaymentIntent,
        else (a refund that arrives before the completion it refers to) the PaymentIntent's session."""
        metadata = charge.get("metadata") or {}
        if metadata.get("payment_id"):
            return str(metadata["payment_id"])
        intent_id = charge.get("payment_intent")
        if not intent_id:
            return None
        payment = Payment.objects.filter(gateway=self.name, transaction_id=intent_id).only("id").first()
        if payment is not None:
            return str(payment.id)
        try:
            session = self._session_by_intent(str(intent_id))
        except (GatewayUnavailable, ApplicationError):
            # Keep the PaymentIntent as the reference: once the payment is confirmed it holds this id,
            # and a replay of the stored event finds it.
            return str(intent_id)
        if session is None:
            return None  # not a payment of ours (another integration on the same account)
        return (session.get("metadata") or {}).get("payment_id") or session.get("client_reference_id") or None

    # --- Refunds -------------------------------------------------------------------------------

    def refund(self, *, payment: Any, amount: int, reason: str, idempotency_key: str) -> GatewayRefund:
        intent_id = self._intent_id(payment)
        if not intent_id:
            return GatewayRefund(
                refund_id="", status="failed", amount=amount, failure_reason="Stripe holds no charge for this payment."
            )
        params: dict[str, Any] = {
            "payment_intent": intent_id,
            "amount": amount,
            "metadata": {"order_id": str(payment.order_id), "payment_id": str(payment.id), "reason": reason[:500]},
        }
        if reason in _REFUND_REASONS:
            params["reason"] = reason
        try:
            refund = self._call(
                lambda client: client.v1.refunds.create(params, {"idempotency_key": idempotency_key}),
                action="refund",
            )
        except ApplicationError as exc:  # refused (already refunded, amount too large...): nothing was refunded
            return GatewayRefund(refund_id="", status="failed", amount=amount, failure_reason=exc.message)
        status = _REFUND_STATUS.get(str(refund.get("status")), "pending")
        return GatewayRefund(
            refund_id=str(refund["id"]),
            status=status,
            amount=int(refund.get("amount") or amount),
            failure_reason=str(refund.get("failure_reason") or "") if status == "failed" else "",
        )

    # --- The client ----------------------------------------------------------------------------

    def _client(self) -> stripe.StripeClient:
        if not settings.STRIPE_SECRET_KEY:
            raise ApplicationError(
                "Stripe is not configured (STRIPE_SECRET_KEY).", code="gateway_error", status_code=502
            )
        base = settings.STRIPE_API_BASE
        return stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": base.rstrip("/")} if base else None,
            max_network_retries=self.max_network_retries,
            http_client=stripe.RequestsClient(timeout=self.timeout_seconds),
        )

    def _call(self, request: Any, *, action: str) -> dict[str, Any]:
        """Runs one API request and answers its object as plain dicts; maps Stripe's errors."""
        try:
            result = request(self._client())
        except stripe.StripeError as exc:
            _raise_for(exc, action)
        return result.to_dict()


def dispute_ref(payload: Any) -> str:
    """The dispute id a stored ``charge.dispute.*`` event names (``dp_``/``du_``), or ``TypeError``."""
    obj = payload["data"]["object"]
    dispute_id = event_text(obj.get("id") if isinstance(obj, dict) else None, field_name="payment_ref")
    if not _DISPUTE_ID.fullmatch(dispute_id):
        raise TypeError("data.object.id is not a dispute id")
    return dispute_id


def _raise_for(exc: stripe.StripeError, action: str) -> NoReturn:
    status = exc.http_status or 0
    transient = (
        isinstance(exc, stripe.APIConnectionError | stripe.APIError | stripe.RateLimitError)
        or status >= 500
        or (status == 409 and not isinstance(exc, stripe.IdempotencyError))  # lock timeout, after retries
    )
    message = exc.user_message or str(exc)
    if transient:
        raise GatewayUnavailable(f"Stripe could not {action}: {message}") from exc
    raise ApplicationError(f"Stripe refused to {action}: {message}", code="gateway_error", status_code=502) from exc


def _line_items(*, payment: Any, order: Any) -> list[dict[str, Any]]:
    """The order's items, itemised when they add up to what is charged.

    Stripe has no negative line items, so a discounted order (whose items add up to more than the
    payment) is charged as one line naming the order: the amount is what matters, and it must equal
    the payment's exactly for re-verification to accept it.
    """
    currency = payment.currency.lower()
    items = list(order.items.all())
    if items and sum(item.unit_price * item.quantity for item in items) == payment.amount:
        return [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": item.unit_price,
                    "product_data": {"name": _item_name(item)},
                },
                "quantity": item.quantity,
            }
            for item in items
        ]
    description = ", ".join(f"{item.quantity} × {_item_name(item)}" for item in items)[:500]
    product_data: dict[str, Any] = {"name": f"Order #{order.order_number}"}
    if description:
        product_data["description"] = description
    return [
        {
            "price_data": {"currency": currency, "unit_amount": payment.amount, "product_data": product_data},
            "quantity": 1,
        }
    ]


def _item_name(item: Any) -> str:
    return f"{item.title} — {item.variant_name}" if item.variant_name else item.title


def _session_expiry(order: Any) -> int | None:
    """The session closes with the order. Stripe needs at least 30 minutes, so a sooner expiry is
    moved just past that limit (the sweeper re-checks the gateway before it cancels an order)."""
    if order.expires_at is None:
        return None
    now = timezone.now()
    expires = min(max(order.expires_at, now + SESSION_MIN_LIFETIME), now + SESSION_MAX_LIFETIME)
    return int(expires.timestamp())


def _refuse_future_timestamp(signature: str) -> None:
    """Stripe's library only refuses old timestamps; one far ahead is as suspicious."""
    for part in signature.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidSignature("Malformed timestamp.") from None
            if timestamp > time.time() + WEBHOOK_TOLERANCE_SECONDS:
                raise InvalidSignature("Timestamp outside the tolerance zone.")
            return


__all__ = ["DISPUTE_EVENTS", "StripeGateway", "dispute_ref"]
