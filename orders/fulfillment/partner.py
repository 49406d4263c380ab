"""Codes fetched per unit from the seller's own fulfillment URL, with a signed request.

The URL is the seller's choice, so every call goes through the one outbound client
(``marketplace.core.outbound_http``): checked when the product is saved and again on the socket of
each call, no redirects, timeouts, a capped answer, and one neutral text when it fails — nothing
from an address inside our network can reach the buyer or the seller."""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from catalog.delivery import partner_secret, partner_url_policy
from catalog.models import Code, CodeStatus
from marketplace.core.crypto import blind_index, hint
from marketplace.core.errors import ApplicationError, Conflict
from marketplace.core.outbound_http import OutboundError, outbound_post
from marketplace.core.ratelimit import retry_after

from .base import DeliveryStrategy, PermanentDeliveryError, Resource, TransientDeliveryError
from .code_pool import CodePoolDelivery

TIMEOUT_SECONDS = 10
RESPONSE_LIMIT = 16 * 1024  # a code, a PIN and a serial fit many times over


class PartnerApiDelivery(DeliveryStrategy):
    """POSTs ``{order, item, unit, fulfillment_input}`` to the seller's URL, signed with Standard
    Webhooks headers, and stores the code it answers (encrypted, like pool codes)."""

    content_type = "partner_api"
    failure_status = "partner_failed"
    remote = True

    def _fetch(self, item: Any, unit: int) -> dict[str, Any]:
        partner = (item.product.delivery_options or {}).get("partner") or {}
        body = json.dumps(
            {
                "type": "fulfillment.requested",
                "order_id": item.order_id,
                "order_number": item.order.order_number,
                "item_id": item.id,
                "unit": unit,
                "quantity": item.quantity,
                "product_id": item.product_id,
                "variant_id": item.variant_id,
                "fulfillment_input": item.fulfillment_input,
                "buyer_email": item.order.buyer_email,
            },
            separators=(",", ":"),
        )
        message_id = f"{item.id}-{unit}"  # the same unit always carries the same id: partners can dedupe
        now = datetime.now(tz=UTC)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(partner_secret(item.product.delivery_options)).sign(message_id, now, body),
            "Idempotency-Key": message_id,
        }
        try:
            response = outbound_post(
                url=str(partner.get("url") or ""),
                body=body.encode(),
                headers=headers,
                policy=partner_url_policy(),
                read_timeout=TIMEOUT_SECONDS,
                max_bytes=RESPONSE_LIMIT,
            )
        except OutboundError as exc:
            # The one neutral text, whatever the reason (refused address, closed port, timeout,
            # redirect, oversized answer): the reason is in the operators' log, not on the order.
            if exc.retryable:
                raise TransientDeliveryError(str(exc)) from None
            raise PermanentDeliveryError(str(exc), "partner_failed") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientDeliveryError(f"The partner answered {response.status_code}.")
        if response.status_code >= 400:
            raise PermanentDeliveryError(f"The partner refused the request ({response.status_code}).", "partner_failed")
        try:
            data = json.loads(response.content)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            raise PermanentDeliveryError("The partner's answer is not JSON.", "partner_failed") from None
        code = data.get("code") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code.strip() or len(code) > 500:
            raise PermanentDeliveryError("The partner's answer has no code.", "partner_failed")
        return {
            "code": code.strip(),
            "pin": data.get("pin"),
            "serial": data.get("serial"),
            "redemption_url": data.get("redemption_url"),
        }

    def fulfill(self, item: Any) -> None:
        stored = set(item.codes.filter(unit__isnull=False).values_list("unit", flat=True))
        for unit in range(1, item.quantity + 1):
            if unit in stored:
                continue
            answer = self._fetch(item, unit)
            try:
                with transaction.atomic():
                    Code.objects.create(
                        unit=unit,
                        seller_id=item.product.seller_id,
                        variant_id=item.variant_id,
                        code=answer["code"],
                        pin=str(answer["pin"]) if answer.get("pin") not in (None, "") else None,
                        serial=str(answer.get("serial") or "")[:120] or None,
                        redemption_url=_redemption_url(answer.get("redemption_url")),
                        code_hash=blind_index(answer["code"], scope=str(item.product.seller_id)),
                        code_hint=hint(answer["code"]),
                        status=CodeStatus.DELIVERED,
                        source=Code.Source.PARTNER,
                        order_item=item,
                        allocated_at=timezone.now(),
                        delivered_at=timezone.now(),
                    )
            except IntegrityError:
                if Code.objects.filter(order_item=item, unit=unit).exists():
                    continue  # another worker stored this unit's code first: one code per unit, ever
                raise PermanentDeliveryError(
                    "The partner answered a code that was already delivered before.", "partner_failed"
                ) from None

    # Delivered partner codes are stored like pool codes: the same views apply.
    codes = CodePoolDelivery.codes
    voucher_codes = CodePoolDelivery.voucher_codes  # type: ignore[assignment]

    def delivery_view(self, item: Any) -> dict[str, Any]:
        view = CodePoolDelivery.delivery_view(self, item)  # type: ignore[arg-type]
        view["content_type"] = self.content_type
        return view

    def resource(self, item: Any, *, request: Any) -> Resource:
        resource = CodePoolDelivery.resource(self, item, request=request)  # type: ignore[arg-type]
        if resource.body:
            resource.body["content_type"] = self.content_type
        return resource


def _redemption_url(value: Any) -> str | None:
    """A partner's redemption URL, kept if it is an http(s) URL of a sane length (else dropped)."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if len(url) > 2000 or not url.lower().startswith(("https://", "http://")):
        return None
    return url


# --- "Test the partner URL" ------------------------------------------------------------------------

TEST_SHOWN = 1024  # bytes of the partner's answer shown to the seller


class PartnerTestRateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many test calls. Try again in {retry_after} seconds.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class PartnerTestResult:
    status_code: int | None
    duration_ms: int
    answer: str  # the first TEST_SHOWN bytes, as text
    valid: bool  # a 2xx JSON answer with a non-empty "code", as a real fulfilment needs
    verdict: str


def partner_url_test(*, product: Any) -> PartnerTestResult:
    """Calls the product's fulfilment URL once with a signed ``fulfillment.test`` request (the body
    of a real one, with ``"test": true`` and sample ids) through the one outbound client — the
    address checked on the socket, no redirect followed, a timeout, a capped answer — and says what
    the partner answered and whether a real fulfilment would accept it. Rate limited per product."""
    if product.delivery_type != "partner_api":
        raise Conflict("This product is not fulfilled by a partner URL.", code="not_partner_product")
    wait = retry_after([("partner_test", product.id)])
    if wait is not None:
        raise PartnerTestRateLimited(wait)
    partner = (product.delivery_options or {}).get("partner") or {}
    body = json.dumps(
        {
            "type": "fulfillment.test",
            "test": True,
            "order_id": "ord_test",
            "order_number": "00000000",
            "item_id": "itm_test",
            "unit": 1,
            "quantity": 1,
            "product_id": product.id,
            "variant_id": "var_test",
            "fulfillment_input": {"player_id": "test-player"},
            "buyer_email": "buyer@example.com",
        },
        separators=(",", ":"),
    )
    message_id = f"test-{product.id}-{int(time.time())}"
    now = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(partner_secret(product.delivery_options)).sign(message_id, now, body),
        "Idempotency-Key": message_id,
    }
    started = time.monotonic()
    try:
        response = outbound_post(
            url=str(partner.get("url") or ""),
            body=body.encode(),
            headers=headers,
            policy=partner_url_policy(),
            read_timeout=TIMEOUT_SECONDS,
            max_bytes=RESPONSE_LIMIT,  # the same limits as a real fulfilment
        )
    except OutboundError as exc:
        return PartnerTestResult(None, _ms(started), "", False, f"No answer: {exc}")
    duration = _ms(started)
    answer = response.text[:TEST_SHOWN]
    if not 200 <= response.status_code < 300:
        verdict = f"The partner answered {response.status_code}: not a success."
        return PartnerTestResult(response.status_code, duration, answer, False, verdict)
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        return PartnerTestResult(response.status_code, duration, answer, False, "The answer is not JSON.")
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code.strip() or len(code) > 500:
        return PartnerTestResult(
            response.status_code, duration, answer, False, 'The answer has no "code" (a non-empty string).'
        )
    return PartnerTestResult(
        response.status_code, duration, answer, True, "A valid reply: a real sale would deliver this code."
    )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
