"""bKash Tokenized Checkout (URL-based), as bKash's developer documentation describes it.

- A payment is created at bKash (``POST /tokenized/checkout/create``: mode ``0011``, amount as a BDT
  string, intent ``sale``, ``merchantInvoiceNumber`` = our ``pay_`` id, ``callbackURL`` = our
  ``GET /api/v1/payments/callbacks/bkash``) and the buyer is sent to its ``bkashURL``.
- bKash then sends the buyer's browser to the callback with ``paymentID`` and ``status``
  (success | failure | cancel). That return is unsigned: it only names the payment to look up.
  The money moves only when *we* execute the payment (``POST /tokenized/checkout/execute``: the
  capture), and we believe only bKash's own status query (``POST /tokenized/checkout/payment/status``):
  ``transactionStatus: Completed`` with our amount, currency and invoice number.
- Every call carries an id token (``authorization``) and our app key (``x-app-key``). The token is
  granted with our credentials (``/tokenized/checkout/token/grant``: headers ``username`` and
  ``password``, body ``app_key`` and ``app_secret``), cached until it expires, and then renewed
  with its refresh token (``/tokenized/checkout/token/refresh``), or granted anew if bKash refuses it.
- Refunds: ``POST /tokenized/checkout/payment/refund`` with ``paymentID``, ``trxID``, ``amount``,
  ``sku`` and ``reason``; bKash's ``refundTrxID`` is recorded on our refund.
- ``Payment.transaction_id`` holds bKash's ``paymentID`` for the payment's whole life (the
  callback, the sweeper and refunds all find it by that); the ``trxID`` is read back when needed.

Every call goes through the guarded outbound client (``marketplace.core.outbound_http``) to
``BKASH_BASE_URL``, with a connect and a read timeout. The app secret, the password and the tokens
are sent in headers and bodies only, never logged: a failure logs the action and bKash's status code.
"""

import hashlib
import json
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.urls import reverse

from marketplace.core.errors import ApplicationError, ValidationFailed
from marketplace.core.outbound_http import OutboundError, configured_host_policy, outbound_post
from payments.models import Refund

from .base import (
    Checkout,
    GatewayRefund,
    GatewayStatus,
    GatewayUnavailable,
    InvalidSignature,
    PaymentGateway,
    WebhookMessage,
)

logger = logging.getLogger(__name__)

SUCCESS = "0000"  # bKash's statusCode for a request it carried out
CURRENCY = "BDT"  # the only currency bKash takes
# A token this close to its expiry is renewed before use, so that it never expires in flight.
TOKEN_MARGIN_SECONDS = 60
# How long the refresh token is kept: a refresh that bKash refuses falls back to a new grant.
REFRESH_TOKEN_KEEP_SECONDS = 7 * 24 * 60 * 60
# What bKash's status query says, and what it means for us. "Initiated": created, not executed; only
# an execute can tell whether the buyer approved (bKash refuses to execute an unapproved payment and
# nothing changes), so it is answered as ``approved`` and the capture decides.
_TRANSACTION_STATUS = {
    "Completed": "succeeded",
    "Initiated": "approved",
    "Failed": "failed",
    "Cancelled": "failed",
    "Expired": "failed",
    "Declined": "failed",
}


def bdt_text(amount: int) -> str:
    """Minor units (poisha) as the decimal string bKash takes: 150050 → "1500.50"."""
    return f"{Decimal(amount).scaleb(-2):.2f}"


def bdt_minor(value: Any) -> int | None:
    """bKash's decimal string back in minor units, exactly; None for anything that is not a
    finite amount with at most two decimals (a malformed answer never matches a payment)."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite():
        return None
    scaled = number.scaleb(2)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def callback_url() -> str:
    return settings.SITE_URL + reverse("payments-api:bkash-callback")


class BkashGateway(PaymentGateway):
    name = "bkash"
    needs_capture = True
    browser_return_only = True
    currencies = frozenset({"BDT"})

    # --- Opening a payment ---------------------------------------------------------------------

    def create_checkout(self, *, payment: Any, order: Any, return_url: str) -> Checkout:
        if payment.currency != CURRENCY:
            message = f"bKash takes payments in BDT only; this order is in {payment.currency}."
            raise ValidationFailed(message, fields={"payment_method": [message]})
        answer = self._api(
            "/tokenized/checkout/create",
            {
                "mode": "0011",
                "payerReference": str(order.order_number),
                "callbackURL": callback_url(),
                "amount": bdt_text(payment.amount),
                "currency": CURRENCY,
                "intent": "sale",
                "merchantInvoiceNumber": str(payment.id),
            },
            action="create the payment",
        )
        payment_id, url = answer.get("paymentID"), answer.get("bkashURL")
        if _code(answer) != SUCCESS or not isinstance(payment_id, str) or not payment_id or not _page_url_ok(url):
            raise ApplicationError(
                f"bKash refused to open the payment: {_message(answer)}", code="gateway_error", status_code=502
            )
        return Checkout(redirect_url=str(url), transaction_id=payment_id)

    # --- Its true state ------------------------------------------------------------------------

    def retrieve(self, *, payment: Any) -> GatewayStatus:
        if not payment.transaction_id:  # never opened at bKash: nothing can have been paid
            return GatewayStatus("failed", payment.amount, payment.currency)
        answer = self._query(payment)
        return self._status(payment, answer)

    def capture(self, *, payment: Any) -> GatewayStatus:
        """Executes the payment, then asks bKash's status query, whose word alone counts. An execute
        bKash refuses (not approved, insufficient balance, already executed) changes nothing by
        itself: the query says what happened, and a payment still only initiated stays open."""
        if not payment.transaction_id:
            return GatewayStatus("failed", payment.amount, payment.currency)
        executed = self._api(
            "/tokenized/checkout/execute", {"paymentID": payment.transaction_id}, action="execute the payment"
        )
        if _code(executed) != SUCCESS:
            logger.info("bKash did not execute payment %s (statusCode %s)", payment.id, _code(executed))
        status = self._status(payment, self._query(payment))
        if status.status == "approved":
            status.status = "pending"  # executed and still not completed: not approved (yet)
        return status

    def _query(self, payment: Any) -> dict[str, Any]:
        answer = self._api(
            "/tokenized/checkout/payment/status", {"paymentID": payment.transaction_id}, action="query the payment"
        )
        if _code(answer) != SUCCESS:
            raise ApplicationError(
                f"bKash could not tell the payment's status: {_message(answer)}", code="gateway_error", status_code=502
            )
        return answer

    def _status(self, payment: Any, answer: dict[str, Any]) -> GatewayStatus:
        status = _TRANSACTION_STATUS.get(str(answer.get("transactionStatus") or ""), "pending")
        amount = bdt_minor(answer.get("amount"))
        reference = str(answer.get("merchantInvoiceNumber") or "")
        if answer.get("paymentID") != payment.transaction_id:
            reference = f"bKash payment {str(answer.get('paymentID'))[:60]}"  # another payment's answer
        elif not reference:
            reference = "(no invoice number)"  # ours always carries one: an answer without it is not ours
        return GatewayStatus(
            status=status,
            amount=-1 if amount is None else amount,
            currency=str(answer.get("currency") or ""),
            transaction_id=payment.transaction_id,
            reference=reference,
        )

    def retrieve_refunded(self, *, payment: Any) -> int:
        """bKash sends no refund events (this asks for none): what it refunded is what its refund API
        confirmed, as recorded on our refunds."""
        total = Refund.objects.filter(payment=payment, status=Refund.Status.SUCCEEDED).aggregate(total=Sum("amount"))
        return int(total["total"] or 0)

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> WebhookMessage:
        raise InvalidSignature("bKash sends no webhooks here; its buyers return to /api/v1/payments/callbacks/bkash.")

    # --- Refunds -------------------------------------------------------------------------------

    def refund(self, *, payment: Any, amount: int, reason: str, idempotency_key: str) -> GatewayRefund:
        """bKash's refund API takes no idempotency key: ``sku`` carries ours (the refund's id), so
        bKash's record names our refund. The payment's ``trxID`` is read from bKash's own status."""
        answer = self._query(payment)
        trx_id = answer.get("trxID")
        if answer.get("transactionStatus") != "Completed" or not isinstance(trx_id, str) or not trx_id:
            return GatewayRefund(
                refund_id="",
                status="failed",
                amount=amount,
                failure_reason="bKash holds no completed payment to refund.",
            )
        try:
            refunded = self._refund_call(payment, trx_id, amount, reason, idempotency_key)
        except GatewayUnavailable:
            # bKash's refund takes no idempotency key: a refund that timed out may have been made.
            # Failing it would let it be asked again (money returned twice); it stays pending instead,
            # holding its amount, until an operator checks bKash's merchant portal.
            logger.warning("bKash did not answer a refund of payment %s; left pending for an operator", payment.id)
            return GatewayRefund(
                refund_id="",
                status="pending",
                amount=amount,
                failure_reason="bKash did not answer; check its merchant portal before refunding again.",
            )
        refund_id = refunded.get("refundTrxID")
        if _code(refunded) != SUCCESS or not isinstance(refund_id, str) or not refund_id:
            return GatewayRefund(refund_id="", status="failed", amount=amount, failure_reason=_message(refunded))
        confirmed = bdt_minor(refunded.get("amount"))
        completed = refunded.get("transactionStatus") == "Completed"
        return GatewayRefund(
            refund_id=refund_id,
            status="succeeded" if completed else "pending",
            amount=amount if confirmed is None else confirmed,
        )

    def _refund_call(self, payment: Any, trx_id: str, amount: int, reason: str, idempotency_key: str) -> dict[str, Any]:
        return self._api(
            "/tokenized/checkout/payment/refund",
            {
                "paymentID": payment.transaction_id,
                "trxID": trx_id,
                "amount": bdt_text(amount),
                "sku": idempotency_key[:255],
                "reason": (reason or "Refund")[:255],
            },
            action="refund the payment",
        )

    # --- The client ----------------------------------------------------------------------------

    def _api(self, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        """One call with the id token; a token bKash no longer takes (401) is dropped and the call
        made once more with a new one."""
        status, answer = self._post(path, body, self._auth_headers(), action=action)
        if status == 401:
            self._forget_tokens()
            status, answer = self._post(path, body, self._auth_headers(), action=action)
        if status == 401:
            raise ApplicationError(
                f"bKash refused our credentials when asked to {action}.", code="gateway_error", status_code=502
            )
        return answer

    def _auth_headers(self) -> dict[str, str]:
        return {"authorization": self._id_token(), "x-app-key": settings.BKASH_APP_KEY}

    def _post(
        self, path: str, body: dict[str, Any], headers: dict[str, str], *, action: str
    ) -> tuple[int, dict[str, Any]]:
        url = settings.BKASH_BASE_URL.rstrip("/") + path
        try:
            response = outbound_post(
                url=url,
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
                policy=configured_host_policy(),
                connect_timeout=settings.BKASH_CONNECT_TIMEOUT_SECONDS,
                read_timeout=settings.BKASH_TIMEOUT_SECONDS,
            )
        except OutboundError as exc:
            # ``exc.reason`` names the host and the kind of failure only, never a header or the body.
            raise GatewayUnavailable(f"bKash did not answer when asked to {action} ({exc.reason}).") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise GatewayUnavailable(f"bKash answered {response.status_code} when asked to {action}.")
        try:
            answer = json.loads(response.content)
        except ValueError:
            raise GatewayUnavailable(f"bKash's answer when asked to {action} was not JSON.") from None
        if not isinstance(answer, dict):
            raise GatewayUnavailable(f"bKash's answer when asked to {action} was not an object.")
        return response.status_code, answer

    # --- Tokens --------------------------------------------------------------------------------

    def _cache_key(self) -> str:
        # One set of tokens per bKash account and base URL (a changed setting never reuses another's).
        account = f"{settings.BKASH_BASE_URL}|{settings.BKASH_APP_KEY}|{settings.BKASH_USERNAME}"
        return "bkash:tokens:" + hashlib.sha256(account.encode()).hexdigest()[:32]

    def _forget_tokens(self) -> None:
        tokens = cache.get(self._cache_key())
        if tokens:  # keep the refresh token: it may still renew
            cache.set(self._cache_key(), {**tokens, "expires_at": 0}, timeout=REFRESH_TOKEN_KEEP_SECONDS)

    def _id_token(self) -> str:
        """The cached id token while it is valid; else renewed with the refresh token; else granted."""
        _require_credentials()
        key = self._cache_key()
        tokens = cache.get(key) or {}
        if tokens.get("id_token") and tokens.get("expires_at", 0) > time.time() + TOKEN_MARGIN_SECONDS:
            return str(tokens["id_token"])
        credentials = {"app_key": settings.BKASH_APP_KEY, "app_secret": settings.BKASH_APP_SECRET}
        answer: dict[str, Any] = {}
        if tokens.get("refresh_token"):
            answer = self._token_call(
                "/tokenized/checkout/token/refresh",
                {**credentials, "refresh_token": tokens["refresh_token"]},
                action="refresh the token",
            )
        if not _token_ok(answer):
            answer = self._token_call("/tokenized/checkout/token/grant", credentials, action="grant a token")
        if not _token_ok(answer):
            raise ApplicationError(
                f"bKash refused our credentials: {_message(answer)}", code="gateway_error", status_code=502
            )
        try:
            lifetime = int(answer.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600
        cache.set(
            key,
            {
                "id_token": answer["id_token"],
                "refresh_token": answer.get("refresh_token") or tokens.get("refresh_token") or "",
                "expires_at": time.time() + lifetime,
            },
            timeout=REFRESH_TOKEN_KEEP_SECONDS,
        )
        return str(answer["id_token"])

    def _token_call(self, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        headers = {"username": settings.BKASH_USERNAME, "password": settings.BKASH_PASSWORD}
        _, answer = self._post(path, body, headers, action=action)
        return answer


def _require_credentials() -> None:
    missing = [
        name
        for name in ("BKASH_APP_KEY", "BKASH_APP_SECRET", "BKASH_USERNAME", "BKASH_PASSWORD", "BKASH_BASE_URL")
        if not getattr(settings, name, "")
    ]
    if missing:
        raise ApplicationError(
            f"bKash is not configured ({', '.join(missing)}).", code="gateway_error", status_code=502
        )


def _token_ok(answer: dict[str, Any]) -> bool:
    return bool(answer) and _code(answer) in (SUCCESS, "") and isinstance(answer.get("id_token"), str)


def _code(answer: dict[str, Any]) -> str:
    """bKash's result code: ``statusCode`` (Tokenized), or ``errorCode`` (its older error shape)."""
    return str(answer.get("statusCode") or answer.get("errorCode") or "")


def _message(answer: dict[str, Any]) -> str:
    text = answer.get("statusMessage") or answer.get("errorMessage") or "no reason given"
    return f"{str(text)[:200]} ({_code(answer) or 'no code'})"


def _page_url_ok(url: Any) -> bool:
    """bKash's payment page: an https URL (http only where local fakes are allowed)."""
    if not isinstance(url, str) or len(url) > 2000:
        return False
    parts = urlsplit(url)
    schemes = ("https", "http") if configured_host_policy().allow_http else ("https",)
    return parts.scheme in schemes and bool(parts.hostname)
