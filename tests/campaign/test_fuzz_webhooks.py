"""Hypothesis against the incoming webhook parsers (sandbox: Standard Webhooks; Stripe:
``Stripe-Signature``) and the endpoint in front of them: any body and headers give a parsed message
or ``InvalidSignature``, and over HTTP a 2xx, a 400 or a 503 in the envelope — never a 500, and a
refused webhook stores nothing."""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from payments.gateways.base import InvalidSignature, WebhookMessage
from payments.gateways.sandbox import SandboxGateway
from payments.gateways.stripe import DISPUTE_EVENTS, StripeGateway
from payments.models import Dispute, WebhookEvent

pytestmark = pytest.mark.django_db

STRIPE_SECRET = "whsec_fuzz_c3RyaXBlLWZ1enotc2VjcmV0"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Event-shaped objects with fields of any type, and anything else JSON can hold.
event_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.text(min_size=190, max_size=260),
        "type": st.sampled_from(["payment.succeeded", "payment.failed", "payment.refunded"]) | json_values,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "payment_id": json_values | st.text(min_size=90, max_size=130),
                "refunded_amount": json_values,
                "object": json_values,
            },
        )
        | json_values,
    },
)
bodies = st.one_of(event_like.map(json.dumps), json_values.map(json.dumps), st.text(max_size=200))


def sandbox_headers(body: str) -> dict[str, str]:
    now = datetime.now(tz=UTC)
    msg_id = "msg_fuzz"
    signature = Webhook(django_settings.SANDBOX_WEBHOOK_SECRET).sign(msg_id, now, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


def stripe_headers(body: bytes) -> dict[str, str]:
    t = int(time.time())
    digest = hmac.new(STRIPE_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={t},v1={digest}"}


@pytest.fixture
def stripe_secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET


@FUZZ
@given(body=st.binary(max_size=300), headers=st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=4))
def test_unsigned_input_is_refused_by_both_parsers(stripe_secret: None, body: bytes, headers: dict[str, str]) -> None:
    for gateway in (SandboxGateway(), StripeGateway()):
        with pytest.raises(InvalidSignature):
            gateway.parse_webhook(body=body, headers=headers)


@FUZZ
@given(body=bodies)
def test_signed_sandbox_bodies_parse_or_are_refused(body: str) -> None:
    try:
        message = SandboxGateway().parse_webhook(body=body.encode(), headers=sandbox_headers(body))
    except InvalidSignature:
        return
    assert isinstance(message, WebhookMessage)
    assert isinstance(message.event_id, str) and isinstance(message.type, str)
    assert message.payment_id is None or isinstance(message.payment_id, str)
    assert message.refunded_total is None or isinstance(message.refunded_total, int)


@FUZZ
@given(body=bodies)
def test_signed_stripe_bodies_parse_or_are_refused(stripe_secret: None, body: str) -> None:
    raw = body.encode()
    try:
        message = StripeGateway().parse_webhook(body=raw, headers=stripe_headers(raw))
    except InvalidSignature:
        return
    assert isinstance(message.event_id, str) and isinstance(message.type, str)
    assert message.payment_id is None or isinstance(message.payment_id, str)
    assert message.refunded_total is None or isinstance(message.refunded_total, int)


@settings(FUZZ, max_examples=40)
@given(body=bodies, gateway=st.sampled_from(["sandbox", "stripe"]), signed=st.booleans())
def test_the_endpoint_answers_in_the_envelope_and_never_500(
    stripe_secret: None, settings: Any, api_client: Any, body: str, gateway: str, signed: bool
) -> None:
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "stripe"]
    raw = body.encode()
    headers = (sandbox_headers(body) if gateway == "sandbox" else stripe_headers(raw)) if signed else {}
    before = WebhookEvent.objects.count()
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    response = api_client.generic(
        "POST", f"/api/v1/payments/webhooks/{gateway}", raw, content_type="application/json", **extra
    )
    assert response.status_code in (200, 400, 503), (response.status_code, response.content[:300])
    envelope = response.json()
    if response.status_code == 400:
        assert envelope["success"] is False and envelope["error"]["code"] == "invalid_signature"
        assert WebhookEvent.objects.count() == before  # refused: nothing stored
    else:
        assert WebhookEvent.objects.count() in (before, before + 1)


# Stripe's dispute events with a data.object of any shape: a dispute id and PaymentIntent of the
# right form, or anything else JSON holds in their place.
def mostly(good: Any) -> Any:
    """The well-formed value three times in four, anything JSON holds otherwise."""
    return st.one_of(good, good, good, json_values)


dispute_objects = st.fixed_dictionaries(
    {"id": mostly(st.from_regex(r"\A(dp|du)_[A-Za-z0-9]{1,12}\Z"))},
    optional={
        "payment_intent": mostly(st.from_regex(r"\Api_[A-Za-z0-9]{1,12}\Z")),
        "amount": json_values,
        "status": st.sampled_from(["needs_response", "won", "lost"]) | json_values,
        "metadata": mostly(st.just({})),
    },
)
dispute_bodies = st.builds(
    lambda event_id, type_, obj: json.dumps({"id": event_id, "type": type_, "data": {"object": obj}}),
    mostly(st.from_regex(r"\Aevt_[a-z0-9]{1,12}\Z")),
    st.sampled_from(sorted(DISPUTE_EVENTS)),
    mostly(dispute_objects),
)


@settings(FUZZ, max_examples=40)
@given(body=dispute_bodies)
def test_signed_dispute_events_of_any_shape_are_parsed_or_refused_never_500(
    stripe_secret: None, settings: Any, api_client: Any, body: str
) -> None:
    settings.ENABLED_PAYMENT_GATEWAYS = ["sandbox", "stripe"]
    raw = body.encode()
    try:
        message = StripeGateway().parse_webhook(body=raw, headers=stripe_headers(raw))
    except InvalidSignature:
        message = None
        event("refused")
    else:
        event("parsed")
        assert message.dispute_id is not None and message.dispute_id.startswith(("dp_", "du_"))
        assert message.payment_id is None  # no payment of ours holds a fuzzed PaymentIntent
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in stripe_headers(raw).items()}
    response = api_client.generic(
        "POST", "/api/v1/payments/webhooks/stripe", raw, content_type="application/json", **extra
    )
    assert response.status_code == (400 if message is None else 200), response.content[:300]
    if message is not None:
        assert response.json()["data"]["status"] in ("ignored",)  # never ours: nothing asked of Stripe
    assert Dispute.objects.count() == 0
