"""SSLCommerz (Bangladesh: cards, mobile banking, internet banking), through its hosted page.

SSLCommerz's v4 API (https://developer.sslcommerz.com/doc/v4/):

- A payment opens a session (``POST {base}/gwprocess/v4/api.php``) with ``tran_id`` = our payment's
  id, the amount in BDT (major units), our browser return URLs and our IPN URL; the buyer is sent to
  the ``GatewayPageURL`` it answers. ``Payment.transaction_id`` holds the session key until the
  payment is confirmed, then SSLCommerz's ``bank_tran_id`` (what a refund names).
- SSLCommerz posts an IPN (a form, ``POST /api/v1/payments/webhooks/sslcommerz``) signed with
  ``verify_sign``: md5 over the fields that ``verify_key`` lists, sorted by name, with
  ``store_passwd=md5(store password)`` among them. A good signature only makes the IPN worth storing:
  the payment is believed after the **validation API** (``validator/api/validationserverAPI.php``
  with the IPN's ``val_id``) says VALID or VALIDATED for our ``tran_id``, amount and currency.
- Without an IPN (lost, or the buyer closed the tab) the **transaction query** by our ``tran_id``
  (``validator/api/merchantTransIDvalidationAPI.php?tran_id=``) finds it, and its ``val_id`` is
  validated the same way. This is what ``retrieve`` does for the sweeper and the success page.
- The browser returns (success, fail, cancel: forms posted by SSLCommerz's page) are unsigned: the
  checkout's view trusts nothing in them, and only asks ``retrieve`` for the payment named in its URL.
- ``risk_level`` 1 (SSLCommerz thinks the payment risky) is reported as ``GatewayStatus.risk = "high"``.
- Refunds: ``merchantTransIDvalidationAPI.php`` with ``bank_tran_id``, ``refund_amount``,
  ``refund_remarks`` and ``refe_id`` (our refund's id), then its status by ``refund_ref_id``.

Every call goes through the guarded client (``marketplace.core.outbound_http``), with timeouts. The
store password travels only in the calls themselves: never in a log line, an error text or an event.
``SSLCOMMERZ_API_BASE`` points the client somewhere other than SSLCommerz (the tests' local fake).
"""

import hashlib
import hmac
import json
import logging
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.urls import reverse

from marketplace.core.errors import ApplicationError, ValidationFailed
from marketplace.core.money import exponent
from marketplace.core.outbound_http import (
    OutboundError,
    OutboundPolicy,
    OutboundResponse,
    outbound_get,
    outbound_post,
    private_urls_allowed,
)
from payments.models import Refund, WebhookEvent

from .base import (
    Checkout,
    GatewayRefund,
    GatewayStatus,
    GatewayUnavailable,
    InvalidSignature,
    PaymentGateway,
    WebhookMessage,
    event_text,
)

logger = logging.getLogger(__name__)

SANDBOX_BASE = "https://sandbox.sslcommerz.com"
LIVE_BASE = "https://securepay.sslcommerz.com"
SESSION_PATH = "/gwprocess/v4/api.php"
VALIDATION_PATH = "/validator/api/validationserverAPI.php"
# One endpoint, three uses: the transaction query (tran_id=), a refund (bank_tran_id=...) and a
# refund's status (refund_ref_id=).
MERCHANT_API_PATH = "/validator/api/merchantTransIDvalidationAPI.php"

CURRENCY = "BDT"
# The validation API's and the transaction query's words for a payment that went through.
PAID = frozenset({"VALID", "VALIDATED"})
# The transaction query's words for an attempt that ended without money.
ENDED_UNPAID = frozenset({"FAILED", "CANCELLED", "EXPIRED"})
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 20.0
# A session's answer lists every payment method with its logos: larger than a partner's answer.
MAX_ANSWER_BYTES = 512 * 1024
# What an IPN must have signed for us to read it: the payment it names and what it says happened.
SIGNED_FIELDS = ("tran_id", "status")
# Fields of an IPN never stored: the signatures (md5 over md5(store password) and the fields, which
# an offline guess could test passwords against).
UNSTORED_FIELDS = frozenset({"verify_sign", "verify_sign_sha2", "store_passwd"})
# A digital good has no shipping address; SSLCommerz still requires these customer fields.
NOT_COLLECTED = "Not collected (digital delivery)"


def ipn_signature(fields: dict[str, str], store_password: str) -> str:
    """SSLCommerz's ``verify_sign``: the fields named in ``verify_key`` that the IPN carries, plus
    ``store_passwd`` = md5(store password), sorted by name, joined as ``k=v`` with ``&``, md5'd."""
    signed = {key: fields[key] for key in fields.get("verify_key", "").split(",") if key in fields}
    signed["store_passwd"] = hashlib.md5(store_password.encode()).hexdigest()  # noqa: S324 - SSLCommerz's algorithm
    text = "&".join(f"{key}={signed[key]}" for key in sorted(signed))
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SSLCommerz's algorithm


def bdt_text(amount: int) -> str:
    """Minor units as SSLCommerz's decimal string: 150050 → '1500.50'."""
    return f"{Decimal(amount).scaleb(-exponent(CURRENCY)):.2f}"


def minor_units(value: Any, currency: str) -> int:
    """SSLCommerz's decimal string ('1500.50') in minor units; ``ValueError`` if it is not one."""
    try:
        scaled = Decimal(str(value).strip()).scaleb(exponent(currency))
    except (InvalidOperation, ValueError, KeyError) as exc:
        raise ValueError(f"{value!r} is not an amount") from exc
    if not scaled.is_finite() or scaled != scaled.to_integral_value() or scaled < 0:
        raise ValueError(f"{value!r} is not an amount in {currency}")
    return int(scaled)


class SSLCommerzGateway(PaymentGateway):
    name = "sslcommerz"
    # Read by the checkout (getattr): SSLCommerz is asked for BDT only.
    currencies = frozenset({CURRENCY})

    # --- Opening a payment ---------------------------------------------------------------------

    def create_checkout(self, *, payment: Any, order: Any, return_url: str) -> Checkout:
        if payment.currency != CURRENCY:
            message = "SSLCommerz takes payments in BDT only."
            raise ValidationFailed(message, fields={"payment_method": [message]})
        store_id, password = self._store()
        items = list(order.items.all())
        product_name = ", ".join(f"{item.quantity} × {item.title}" for item in items)[:255] or order.product.title
        data = {
            "store_id": store_id,
            "store_passwd": password,
            "total_amount": bdt_text(payment.amount),
            "currency": CURRENCY,
            "tran_id": payment.id,
            "success_url": _return_url(payment, "success"),
            "fail_url": _return_url(payment, "fail"),
            "cancel_url": _return_url(payment, "cancel"),
            "ipn_url": settings.SITE_URL + reverse("payments-api:webhook", args=[self.name]),
            "product_name": product_name,
            "product_category": "Digital goods",
            "product_profile": "non-physical-goods",
            "shipping_method": "NO",
            "num_of_item": str(sum(item.quantity for item in items) or 1),
            "cus_name": order.buyer_email.split("@", 1)[0][:50] or "Customer",
            "cus_email": order.buyer_email,
            "cus_add1": NOT_COLLECTED,
            "cus_city": NOT_COLLECTED,
            "cus_postcode": "0000",
            "cus_country": "Bangladesh",
            "cus_phone": NOT_COLLECTED,
            "value_a": str(order.order_number),
        }
        answer = self._json(
            self._post(SESSION_PATH, data, action="open a payment session"), action="open a payment session"
        )
        page = str(answer.get("GatewayPageURL") or "")
        if answer.get("status") != "SUCCESS" or not page:
            reason = str(answer.get("failedreason") or "no reason given")[:200]
            raise ApplicationError(
                f"SSLCommerz refused the payment session: {reason}", code="gateway_error", status_code=502
            )
        if not _is_sslcommerz_page(page, self._base()):
            raise ApplicationError(
                "SSLCommerz answered a payment page outside SSLCommerz.", code="gateway_error", status_code=502
            )
        return Checkout(redirect_url=page, transaction_id=str(answer.get("sessionkey") or "")[:200])

    # --- Its true state ------------------------------------------------------------------------

    def retrieve(self, *, payment: Any) -> GatewayStatus:
        """The validation API for the ``val_id`` of the payment's IPN, if one came; else (or if that
        ``val_id`` does not validate for this payment) the transaction query by our ``tran_id``."""
        val_id = _ipn_val_id(payment)
        if val_id:
            validated = self._validated(payment, val_id)
            if validated is not None:
                return validated
        return self._query(payment)

    def _query(self, payment: Any) -> GatewayStatus:
        store_id, password = self._store()
        answer = self._json(
            self._get(
                MERCHANT_API_PATH,
                {"tran_id": payment.id, "store_id": store_id, "store_passwd": password, "format": "json"},
                action="look up a payment",
            ),
            action="look up a payment",
        )
        connect = str(answer.get("APIConnect") or "")
        if connect != "DONE":
            raise GatewayUnavailable(f"SSLCommerz's transaction query answered APIConnect={connect[:40]!r}.")
        elements = answer.get("element") or []
        mine = [e for e in elements if isinstance(e, dict) and str(e.get("tran_id") or "") == str(payment.id)]
        for element in mine:
            if str(element.get("status") or "") in PAID and element.get("val_id"):
                validated = self._validated(payment, str(element["val_id"]))
                if validated is not None:
                    return validated
        if mine and all(str(e.get("status") or "") in ENDED_UNPAID for e in mine):
            return GatewayStatus("failed", payment.amount, payment.currency)
        return GatewayStatus("pending", payment.amount, payment.currency)

    def _validated(self, payment: Any, val_id: str) -> GatewayStatus | None:
        """The validation API's word on ``val_id``: a succeeded status (with what SSLCommerz says was
        paid) if it is VALID or VALIDATED for this payment's ``tran_id``, else None."""
        store_id, password = self._store()
        answer = self._json(
            self._get(
                VALIDATION_PATH,
                {"val_id": val_id, "store_id": store_id, "store_passwd": password, "v": "1", "format": "json"},
                action="validate a payment",
            ),
            action="validate a payment",
        )
        if str(answer.get("status") or "") not in PAID:
            return None
        if str(answer.get("tran_id") or "") != str(payment.id):
            logger.warning("SSLCommerz validated a val_id of another transaction for payment %s", payment.id)
            return None
        try:
            amount, currency = _paid_amount(answer, expected=(payment.amount, payment.currency))
        except ValueError as exc:
            raise ApplicationError(
                f"SSLCommerz's validation answer is unreadable: {exc}", code="gateway_error", status_code=502
            ) from exc
        return GatewayStatus(
            status="succeeded",
            amount=amount,
            currency=currency,
            transaction_id=str(answer.get("bank_tran_id") or "")[:200],
            risk="high" if str(answer.get("risk_level") or "0").strip() == "1" else "",
        )

    def retrieve_refunded(self, *, payment: Any) -> int:
        """What SSLCommerz confirms refunded of the payment: the refunds we asked for that its refund
        status query reports ``refunded``."""
        total = 0
        for refund in Refund.objects.filter(payment_id=payment.pk).exclude(gateway_refund_id=""):
            if self._refund_status(refund.gateway_refund_id).get("status") == "refunded":
                total += refund.amount
        return total

    # --- IPN -----------------------------------------------------------------------------------

    def parse_webhook(self, *, body: bytes, headers: dict[str, str]) -> WebhookMessage:
        password = settings.SSLCOMMERZ_STORE_PASSWORD
        if not password:
            raise InvalidSignature("SSLCOMMERZ_STORE_PASSWORD is not configured.")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidSignature(f"Malformed IPN body: {type(exc).__name__}") from exc
        fields: dict[str, str] = {}
        for key, value in pairs:
            if key in fields:
                raise InvalidSignature(f"The IPN repeats the field {key[:40]!r}.")
            fields[key] = value
        sign = fields.get("verify_sign", "")
        if not sign or not fields.get("verify_key"):
            raise InvalidSignature("The IPN carries no verify_sign or verify_key.")
        if not hmac.compare_digest(ipn_signature(fields, password).encode(), sign.strip().lower().encode()):
            raise InvalidSignature("verify_sign does not match.")
        signed = set(fields["verify_key"].split(","))
        status = fields.get("status", "")
        needed = (*SIGNED_FIELDS, "val_id") if status in PAID else SIGNED_FIELDS
        if any(key not in signed or key not in fields for key in needed):
            raise InvalidSignature(f"The IPN does not sign {', '.join(needed)}.")
        if "store_id" in signed and fields.get("store_id") != settings.SSLCOMMERZ_STORE_ID:
            raise InvalidSignature("The IPN is for another store.")
        payload = {key: value for key, value in fields.items() if key in signed and key not in UNSTORED_FIELDS}
        try:
            tran_id = event_text(fields["tran_id"], field_name="payment_ref")
            if status in PAID:
                event_id = f"ipn:{event_text(fields['val_id'], field_name='event_id')}"
                event_type = "payment.succeeded"
            else:
                event_id = f"ipn:{tran_id}:{status}:{fields.get('tran_date', '')}"
                event_type = f"payment.{status.lower() or 'unknown'}"
            return WebhookMessage(
                event_id=event_text(event_id[:200], field_name="event_id"),
                type=event_text(event_type[:100], field_name="type"),
                payment_id=tran_id,
                payload=payload,
            )
        except TypeError as exc:
            raise InvalidSignature(f"Malformed IPN: {exc}") from exc

    # --- Refunds -------------------------------------------------------------------------------

    def refund(self, *, payment: Any, amount: int, reason: str, idempotency_key: str) -> GatewayRefund:
        """The refund API against the payment's ``bank_tran_id`` (asked of SSLCommerz again, not
        taken from our row), then its status query: refunded → succeeded, processing → pending."""
        paid = self.retrieve(payment=payment)
        if paid.status != "succeeded" or not paid.transaction_id:
            return GatewayRefund(
                refund_id="", status="failed", amount=amount, failure_reason="SSLCommerz holds no payment to refund."
            )
        store_id, password = self._store()
        answer = self._json(
            self._get(
                MERCHANT_API_PATH,
                {
                    "bank_tran_id": paid.transaction_id,
                    "refund_amount": bdt_text(amount),
                    "refund_remarks": (reason or "Refund")[:255],
                    "refe_id": idempotency_key[:50],
                    "store_id": store_id,
                    "store_passwd": password,
                    "v": "1",
                    "format": "json",
                },
                action="refund",
            ),
            action="refund",
        )
        refund_ref = str(answer.get("refund_ref_id") or "")[:200]
        status = str(answer.get("status") or "").lower()
        if answer.get("APIConnect") != "DONE" or status not in ("success", "processing") or not refund_ref:
            reason_given = str(answer.get("errorReason") or answer.get("APIConnect") or "refused")[:300]
            return GatewayRefund(
                refund_id=refund_ref, status="failed", amount=amount, failure_reason=f"SSLCommerz: {reason_given}"
            )
        try:
            settled = str(self._refund_status(refund_ref).get("status") or "").lower()
        except (GatewayUnavailable, ApplicationError):
            # SSLCommerz took the refund: never report it failed (it would be asked for again).
            return GatewayRefund(refund_id=refund_ref, status="pending", amount=amount)
        if settled == "refunded":
            return GatewayRefund(refund_id=refund_ref, status="succeeded", amount=amount)
        if settled == "cancelled":
            return GatewayRefund(
                refund_id=refund_ref, status="failed", amount=amount, failure_reason="SSLCommerz cancelled the refund."
            )
        return GatewayRefund(refund_id=refund_ref, status="pending", amount=amount)

    def _refund_status(self, refund_ref_id: str) -> dict[str, Any]:
        store_id, password = self._store()
        return self._json(
            self._get(
                MERCHANT_API_PATH,
                {"refund_ref_id": refund_ref_id, "store_id": store_id, "store_passwd": password, "format": "json"},
                action="look up a refund",
            ),
            action="look up a refund",
        )

    # --- The client ----------------------------------------------------------------------------

    def _store(self) -> tuple[str, str]:
        store_id, password = settings.SSLCOMMERZ_STORE_ID, settings.SSLCOMMERZ_STORE_PASSWORD
        if not (store_id and password):
            raise ApplicationError(
                "SSLCommerz is not configured (SSLCOMMERZ_STORE_ID, SSLCOMMERZ_STORE_PASSWORD).",
                code="gateway_error",
                status_code=502,
            )
        return store_id, password

    def _base(self) -> str:
        base = settings.SSLCOMMERZ_API_BASE or (SANDBOX_BASE if settings.SSLCOMMERZ_SANDBOX else LIVE_BASE)
        return base.rstrip("/")

    def _policy(self) -> OutboundPolicy:
        local = private_urls_allowed()  # development and tests (a local fake); production refuses it
        return OutboundPolicy(allow_http=local, allow_private=local)

    def _get(self, path: str, params: dict[str, str], *, action: str) -> OutboundResponse:
        try:
            return outbound_get(
                url=f"{self._base()}{path}?{urlencode(params)}",
                headers={"Accept": "application/json"},
                policy=self._policy(),
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                max_bytes=MAX_ANSWER_BYTES,
            )
        except OutboundError as exc:  # its text never holds the URL (and so the store password)
            raise GatewayUnavailable(f"SSLCommerz did not answer when asked to {action}.") from exc

    def _post(self, path: str, data: dict[str, str], *, action: str) -> OutboundResponse:
        try:
            return outbound_post(
                url=f"{self._base()}{path}",
                body=urlencode(data).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
                policy=self._policy(),
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                max_bytes=MAX_ANSWER_BYTES,
            )
        except OutboundError as exc:
            raise GatewayUnavailable(f"SSLCommerz did not answer when asked to {action}.") from exc

    def _json(self, response: OutboundResponse, *, action: str) -> dict[str, Any]:
        if response.status_code >= 500 or response.status_code == 429:
            raise GatewayUnavailable(f"SSLCommerz answered {response.status_code} when asked to {action}.")
        if response.status_code != 200:
            raise ApplicationError(
                f"SSLCommerz answered {response.status_code} when asked to {action}.",
                code="gateway_error",
                status_code=502,
            )
        try:
            answer = json.loads(response.content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise GatewayUnavailable(f"SSLCommerz's answer to {action} is not a JSON object.")
        return answer


def _return_url(payment: Any, outcome: str) -> str:
    return settings.SITE_URL + reverse("checkout:sslcommerz-return", args=[payment.id, outcome])


def _is_sslcommerz_page(url: str, base: str) -> bool:
    """The hosted page is SSLCommerz's own (or, in tests, the configured base's host)."""
    try:
        parts, base_parts = urlsplit(url), urlsplit(base)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if host and host == (base_parts.hostname or "").lower() and parts.scheme == base_parts.scheme:
        return True
    return parts.scheme == "https" and (host == "sslcommerz.com" or host.endswith(".sslcommerz.com"))


def _ipn_val_id(payment: Any) -> str:
    """The ``val_id`` of the payment's latest signed VALID IPN, if one came."""
    payload = (
        WebhookEvent.objects.filter(gateway=SSLCommerzGateway.name, payment_ref=payment.id, type="payment.succeeded")
        .order_by("-received_at")
        .values_list("payload", flat=True)
        .first()
    )
    return str(payload.get("val_id") or "") if isinstance(payload, dict) else ""


def _paid_amount(answer: dict[str, Any], *, expected: tuple[int, str]) -> tuple[int, str]:
    """What the validation answer says was paid. ``amount``/``currency`` are the transaction's;
    ``currency_amount``/``currency_type`` what the session asked. Both must be what we ``expected``:
    the first pair that differs is reported (so a tampered field is a mismatch whichever it is)."""
    currency = str(answer.get("currency") or "")
    amount = minor_units(answer.get("amount"), currency or CURRENCY)
    asked_currency = str(answer.get("currency_type") or currency)
    asked_amount = (
        minor_units(answer["currency_amount"], asked_currency or CURRENCY)
        if answer.get("currency_amount") not in (None, "")
        else amount
    )
    for pair in ((amount, currency), (asked_amount, asked_currency)):
        if pair != expected:
            return pair
    return amount, currency


__all__ = ["SSLCommerzGateway", "bdt_text", "ipn_signature"]
