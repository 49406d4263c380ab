"""The marketplace's client for the built-in sandbox gateway.

It talks to the sandbox the way it would talk to any external gateway: it opens a payment, sends
the buyer to the gateway's hosted page, verifies signed webhooks, and asks the gateway's status
API before it believes anything.
"""

import json
from typing import Any

import requests
from django.conf import settings
from django.urls import reverse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from marketplace.core.errors import ApplicationError
from payments.sandbox_server import server as sandbox

from .base import (
    Checkout,
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


class SandboxGateway(PaymentGateway):
    name = "sandbox"
    opens_in_process = True  # its own side is ``payments.sandbox_server``, in this database

    def create_checkout(self, *, payment: Any, order: Any, return_url: str) -> Checkout:
        sandbox.sandbox_open_payment(
            payment_id=payment.id,
            order_id=order.id,
            amount=payment.amount,
            currency=payment.currency,
            description=f"{order.product.title} — order #{order.order_number}",
            return_url=return_url,
        )
        return Checkout(redirect_url=settings.SITE_URL + reverse("sandbox:pay", args=[payment.id]))

    def retrieve(self, *, payment: Any) -> GatewayStatus:
        data = self._status(payment)
        if data is None:
            return GatewayStatus("failed", payment.amount, payment.currency)
        return GatewayStatus(
            status=_STATUS.get(data["status"], "pending"),
            amount=int(data["amount"]),
            currency=data["currency"],
            transaction_id=data.get("charge_id") or "",
        )

    def retrieve_refunded(self, *, payment: Any) -> int:
        data = self._status(payment)
        return 0 if data is None else int(data.get("refunded_amount") or 0)

    def _status(self, payment: Any) -> dict[str, Any] | None:
        """The sandbox's status API (over HTTP when ``SANDBOX_API_URL`` is set); None if it has no
        such payment."""
        base = getattr(settings, "SANDBOX_API_URL", "")
        if not base:
            return sandbox.sandbox_payment_status(payment.id)
        try:
            response = requests.get(
                f"{base.rstrip('/')}/sandbox/api/payments/{payment.id}",
                headers={"Authorization": f"Bearer {settings.SANDBOX_WEBHOOK_SECRET}"},
                timeout=10,
            )
        except requests.RequestException as exc:
            raise GatewayUnavailable(str(exc)) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise GatewayUnavailable(f"sandbox answered {response.status_code}")
        data: dict[str, Any] = response.json()["data"]
        return data

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> WebhookMessage:
        secret = settings.SANDBOX_WEBHOOK_SECRET
        if not secret:
            raise InvalidSignature("SANDBOX_WEBHOOK_SECRET is not configured.")
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            Webhook(secret).verify(body, lowered, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:  # a malformed header is a bad signature
            raise InvalidSignature(str(exc)) from exc
        try:
            payload = json.loads(body)
            data = payload.get("data") or {}
            event_type = event_text(payload["type"], field_name="type")
            refunded = data.get("refunded_amount") if event_type == "payment.refunded" else None
            return WebhookMessage(
                event_id=event_text(payload["id"], field_name="event_id"),
                type=event_type,
                payment_id=optional_event_text(data.get("payment_id"), field_name="payment_ref"),
                payload=payload,
                refunded_total=event_amount(refunded, name="refunded_amount"),
            )
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise InvalidSignature(f"Malformed event body: {exc}") from exc

    def refund(self, *, payment: Any, amount: int, reason: str, idempotency_key: str) -> GatewayRefund:

        try:
            refund = sandbox.sandbox_refund(payment_id=payment.id, amount=amount, idempotency_key=idempotency_key)
        except ApplicationError as exc:
            return GatewayRefund(refund_id="", status="failed", amount=amount, failure_reason=exc.message)
        return GatewayRefund(refund_id=refund.id, status="succeeded", amount=refund.amount)


_STATUS = {"succeeded": "succeeded", "failed": "failed", "requires_payment": "pending"}
