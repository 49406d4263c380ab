"""A local fake of the parts of Stripe's HTTP API the marketplace uses, for tests.

It listens on 127.0.0.1 (a ``ThreadingHTTPServer`` on a free port) and answers the official
``stripe`` library the way api.stripe.com does: form-encoded requests with bracketed keys, bearer
API keys, ``Idempotency-Key`` replays, errors as ``{"error": {"type", "code", "message", "param"}}``,
and objects shaped like Stripe's documented ones (Checkout Session, PaymentIntent, Charge, Refund).

Stripe Connect (accounts, account links, transfers and their reversals, a connected account's payouts
and balance transactions with the ``Stripe-Account`` header) is ``FakeStripe.connect``, in its own
section at the end.

Endpoints: ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}`` (``expand[]=payment_intent``),
``GET /v1/checkout/sessions?payment_intent=`` (``expand[]=data.payment_intent``),
``GET /v1/payment_intents/{id}`` (``expand[]=latest_charge``), ``POST /v1/refunds``, ``GET /v1/disputes/{id}``.

The tests drive what happens at Stripe with ``mark_paid``, ``mark_processing``, ``mark_async_failed``
and ``mark_expired``, open and close disputes with ``open_dispute`` and ``set_dispute_status``, build
events with ``session_event``, ``charge_refunded_event`` and ``dispute_event``, and sign them
with ``sign_webhook`` exactly as Stripe does.
"""

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

API_VERSION = "2025-09-30.clover"


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]  # lower-cased names


@dataclass
class _Failure:
    status: int
    error: dict[str, Any]


@dataclass
class FakeStripe:
    api_key: str = "sk_test_fake_marketplace"
    requests: list[RecordedRequest] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._idempotent: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = {}
        self._failures: list[_Failure] = []
        self._server: ThreadingHTTPServer | None = None
        self.connect = FakeConnect(self)  # Stripe Connect: its own section below

    # --- Running ------------------------------------------------------------------------------

    def start(self) -> "FakeStripe":
        fake = self

        class Handler(_Handler):
            stripe = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True, name="fake-stripe"
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- Inspecting ---------------------------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def only_session(self) -> dict[str, Any]:
        with self._lock:
            assert len(self.sessions) == 1, f"{len(self.sessions)} sessions"
            return next(iter(self.sessions.values()))

    # --- What happens at Stripe ---------------------------------------------------------------

    def fail_next(self, status: int = 500, *, times: int = 1, error: dict[str, Any] | None = None) -> None:
        """The next ``times`` API requests answer ``status`` (before doing anything)."""
        error = error or {"type": "api_error", "message": "Something went wrong on Stripe's end."}
        with self._lock:
            self._failures.extend(_Failure(status, error) for _ in range(times))

    def mark_paid(self, session_id: str) -> dict[str, Any]:
        """The buyer paid by card: the session is complete and paid, with a succeeded PaymentIntent and its charge."""
        with self._lock:
            session = self.sessions[session_id]
            intent = self._intent_for(session, status="succeeded")
            self._charge_for(intent)
            session.update(status="complete", payment_status="paid")
            return session

    def mark_processing(self, session_id: str) -> dict[str, Any]:
        """The buyer chose a delayed method (a bank debit): complete, unpaid, the PaymentIntent processing."""
        with self._lock:
            session = self.sessions[session_id]
            self._intent_for(session, status="processing")
            session.update(status="complete", payment_status="unpaid")
            return session

    def mark_async_failed(self, session_id: str) -> dict[str, Any]:
        """The delayed payment failed: complete, unpaid, the PaymentIntent back to requires_payment_method."""
        with self._lock:
            session = self.sessions[session_id]
            intent = self._intent_for(session, status="requires_payment_method")
            intent["last_payment_error"] = {"type": "card_error", "code": "payment_method_not_available"}
            session.update(status="complete", payment_status="unpaid")
            return session

    def mark_expired(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self.sessions[session_id]
            session.update(status="expired", url=None)
            return session

    def _intent_for(self, session: dict[str, Any], *, status: str) -> dict[str, Any]:
        intent_id = session.get("payment_intent") or _id("pi_test_")
        intent = self.intents.setdefault(
            intent_id,
            {
                "id": intent_id,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": 0,
                "currency": session["currency"],
                "created": int(time.time()),
                "latest_charge": None,
                "livemode": False,
                "metadata": dict(session["_payment_intent_metadata"]),
                "status": status,
            },
        )
        intent["status"] = status
        session["payment_intent"] = intent_id
        return intent

    def _charge_for(self, intent: dict[str, Any]) -> dict[str, Any]:
        charge_id = _id("ch_test_")
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "captured": True,
            "created": int(time.time()),
            "currency": intent["currency"],
            "livemode": False,
            "metadata": {},
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
        }
        self.charges[charge_id] = charge
        intent.update(latest_charge=charge_id, amount_received=intent["amount"])
        return charge

    def open_dispute(
        self,
        intent_id: str,
        *,
        amount: int | None = None,
        reason: str = "fraudulent",
        status: str = "needs_response",
        due_in_days: int = 7,
    ) -> dict[str, Any]:
        """The buyer's bank disputes the PaymentIntent's charge: a Dispute object as Stripe's
        (``dp_...``, the charge, its PaymentIntent, the amount, ``evidence_details.due_by``); the
        charge is marked ``disputed``. ``amount`` defaults to what is left unrefunded."""
        with self._lock:
            intent = self.intents[intent_id]
            charge = self.charges[intent["latest_charge"]]
            now = int(time.time())
            dispute = {
                "id": _id("dp_test_"),
                "object": "dispute",
                "amount": charge["amount"] - charge["amount_refunded"] if amount is None else amount,
                "balance_transactions": [],
                "charge": charge["id"],
                "created": now,
                "currency": charge["currency"],
                "evidence": {},
                "evidence_details": {
                    "due_by": now + due_in_days * 86400,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": intent_id,
                "reason": reason,
                "status": status,
            }
            self.disputes[dispute["id"]] = dispute
            charge["disputed"] = True
            return dict(dispute)

    def set_dispute_status(self, dispute_id: str, status: str) -> dict[str, Any]:
        """The dispute moves at Stripe (under_review after evidence, then won or lost)."""
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = status
            if status in ("won", "lost", "warning_closed"):
                dispute["evidence_details"]["due_by"] = None
            return dict(dispute)

    # --- Events -------------------------------------------------------------------------------

    def event(self, type_: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "id": event_id or _id("evt_test_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }

    def session_event(self, type_: str, session_id: str, *, event_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            return self.event(type_, _public(self.sessions[session_id]), event_id=event_id)

    def charge_refunded_event(self, intent_id: str, *, event_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            charge = self.charges[self.intents[intent_id]["latest_charge"]]
            return self.event("charge.refunded", dict(charge), event_id=event_id)

    def dispute_event(
        self, type_: str, dispute_id: str, *, event_id: str | None = None, **changes: Any
    ) -> dict[str, Any]:
        """``charge.dispute.created|updated|closed|funds_withdrawn|funds_reinstated`` carrying the
        dispute as Stripe holds it, with ``changes`` applied to the event's copy only (what a forged or
        stale event would claim)."""
        with self._lock:
            obj = json.loads(json.dumps(self.disputes[dispute_id]))
            obj.update(changes)
            return self.event(type_, obj, event_id=event_id)

    # --- The API ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, dict]:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, params, headers))
            if headers.get("authorization") != f"Bearer {self.api_key}":
                return 401, _error("invalid_request_error", "Invalid API Key provided.", code="api_key_invalid"), {}
            if self._failures:
                failure = self._failures.pop(0)
                return failure.status, {"error": failure.error}, {}
            key = headers.get("idempotency-key")
            if method == "POST" and key:
                if key in self._idempotent:
                    first_path, first_params, status, body = self._idempotent[key]
                    if (first_path, first_params) != (path, params):
                        return (
                            400,
                            _error(
                                "idempotency_error",
                                "Keys for idempotent requests can only be used with the same parameters they were "
                                "first used with. Try using a key other than '" + key + "' if you meant to execute "
                                "a different request.",
                            ),
                            {},
                        )
                    return status, body, {"Idempotent-Replayed": "true"}
            connected = self.connect.route(method, path, params, headers)
            status, body = connected if connected is not None else self._route(method, path, params)
            if method == "POST" and key and status < 500:
                self._idempotent[key] = (path, params, status, body)
            return status, body, {"Idempotency-Key": key} if key else {}

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(params)
        if method == "GET" and path == "/v1/checkout/sessions":
            return self._list_sessions(params)
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)", path)
        if method == "GET" and match:
            session = self.sessions.get(match.group(1))
            if session is None:
                return 404, _missing("checkout.session", match.group(1), "session")
            return 200, self._expanded(_public(session), params.get("expand") or [], "")
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
        if method == "GET" and match:
            intent = self.intents.get(match.group(1))
            if intent is None:
                return 404, _missing("payment_intent", match.group(1), "intent")
            intent = dict(intent)
            if "latest_charge" in (params.get("expand") or []) and intent.get("latest_charge"):
                intent["latest_charge"] = dict(self.charges[intent["latest_charge"]])
            return 200, intent
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        match = re.fullmatch(r"/v1/disputes/([^/]+)", path)
        if method == "GET" and match:
            dispute = self.disputes.get(match.group(1))
            if dispute is None:
                return 404, _missing("dispute", match.group(1), "dispute")
            return 200, json.loads(json.dumps(dispute))
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_session(self, params: dict[str, Any]) -> tuple[int, Any]:
        if params.get("mode") != "payment":
            return 400, _error("invalid_request_error", "This fake only supports mode=payment.", param="mode")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            return 400, _error("invalid_request_error", "line_items is required in payment mode.", param="line_items")
        currencies = set()
        total = 0
        for index, item in enumerate(items):
            price = item.get("price_data") or {}
            currency, amount = price.get("currency", ""), price.get("unit_amount", "")
            if not re.fullmatch(r"[a-z]{3}", currency):
                return 400, _error(
                    "invalid_request_error",
                    f"Invalid currency: {currency}.",
                    param=f"line_items[{index}][price_data][currency]",
                )
            if not str(amount).isdigit() or not (price.get("product_data") or {}).get("name"):
                return 400, _error(
                    "invalid_request_error", "Invalid price_data.", param=f"line_items[{index}][price_data]"
                )
            currencies.add(currency)
            total += int(amount) * int(item.get("quantity") or 1)
        if len(currencies) != 1:
            return 400, _error("invalid_request_error", "All line items must share one currency.", param="line_items")
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + 24 * 3600)
        if not now + 30 * 60 <= expires_at <= now + 24 * 3600:
            return 400, _error(
                "invalid_request_error",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        session_id = _id("cs_test_a1")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": currencies.pop(),
            "customer": None,
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": "payment",
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.url}/c/pay/{session_id}",
            "_payment_intent_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
            "_line_items": items,
        }
        self.sessions[session_id] = session
        return 200, _public(session)

    def _list_sessions(self, params: dict[str, Any]) -> tuple[int, Any]:
        intent_id = params.get("payment_intent")
        found = [s for s in self.sessions.values() if not intent_id or s["payment_intent"] == intent_id]
        limit = int(params.get("limit") or 10)
        expand = params.get("expand") or []
        return 200, {
            "object": "list",
            "data": [self._expanded(_public(s), expand, "data.") for s in found[:limit]],
            "has_more": len(found) > limit,
            "url": "/v1/checkout/sessions",
        }

    def _expanded(self, session: dict[str, Any], expand: list[str], prefix: str) -> dict[str, Any]:
        if f"{prefix}payment_intent" in expand and session.get("payment_intent"):
            session["payment_intent"] = dict(self.intents[session["payment_intent"]])
        return session

    def _create_refund(self, params: dict[str, Any]) -> tuple[int, Any]:
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None:
            return 404, _missing("payment_intent", params.get("payment_intent", ""), "payment_intent")
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            return 400, _error(
                "invalid_request_error",
                "This PaymentIntent does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        charge = self.charges[intent["latest_charge"]]
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            return 400, _error(
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = int(params.get("amount") or remaining)
        if amount > remaining:
            return 400, _error(
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        reason = params.get("reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            return 400, _error("invalid_request_error", f"Invalid reason: {reason}", param="reason")
        refund = {
            "id": _id("re_test_"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": _id("txn_test_"),
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "metadata": params.get("metadata") or {},
            "payment_intent": intent["id"],
            "reason": reason,
            "receipt_number": None,
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return 200, dict(refund)


# --- Stripe Connect ------------------------------------------------------------------------------------


class FakeConnect:
    """Stripe Connect as the platform sees it: Express accounts (``POST /v1/accounts``, ``GET
    /v1/accounts/{id}``), onboarding links (``POST /v1/account_links``), transfers to a connected account
    (``POST /v1/transfers``, ``POST /v1/transfers/{id}/reversals``) and, on a connected account (the
    ``Stripe-Account`` header), its payouts (``GET /v1/payouts/{id}``) and the balance transactions each
    one carried (``GET /v1/balance_transactions?payout=&type=``).

    A transfer lands on the connected account as a ``py_`` payment (the transfer's
    ``destination_payment``) with a ``payment`` balance transaction; ``pay_out`` makes the account's
    automatic payout of everything not paid out yet. The tests drive the account with
    ``complete_onboarding`` and ``restrict``, refuse transfers with ``refuse_transfers``, and build
    Connect events (they carry ``account``) with ``account_event`` and ``payout_event``."""

    def __init__(self, stripe: FakeStripe) -> None:
        self.stripe = stripe
        self.accounts: dict[str, dict[str, Any]] = {}
        self.links: list[dict[str, Any]] = []
        self.transfers: dict[str, dict[str, Any]] = {}
        self.reversals: dict[str, dict[str, Any]] = {}
        self.payouts: dict[str, dict[str, Any]] = {}  # connected accounts' payouts, each with its "_account"
        self.balance: dict[str, list[dict[str, Any]]] = {}  # per account, its balance transactions
        self.transfer_error: dict[str, Any] | None = None

    # --- What happens at Stripe ---

    def complete_onboarding(self, account_id: str) -> dict[str, Any]:
        """The seller finished Stripe's onboarding: the account can take transfers and pay out."""
        with self.stripe._lock:
            account = self.accounts[account_id]
            account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
            account["capabilities"] = {"transfers": "active"}
            account["requirements"] = {
                "currently_due": [],
                "eventually_due": [],
                "past_due": [],
                "disabled_reason": None,
            }
            return account

    def restrict(self, account_id: str, *, due: list[str] | None = None) -> dict[str, Any]:
        """Stripe needs more information: transfers and payouts stop until it is given."""
        with self.stripe._lock:
            account = self.accounts[account_id]
            due = due or ["individual.verification.document"]
            account.update(payouts_enabled=False, charges_enabled=False)
            account["capabilities"] = {"transfers": "inactive"}
            account["requirements"] = {
                "currently_due": due,
                "eventually_due": due,
                "past_due": due,
                "disabled_reason": "requirements.past_due",
            }
            return account

    def refuse_transfers(
        self, message: str = "Insufficient funds in Stripe account.", code: str = "balance_insufficient"
    ) -> None:
        """Every later ``POST /v1/transfers`` is refused (400) with this error."""
        with self.stripe._lock:
            self.transfer_error = {"type": "invalid_request_error", "code": code, "message": message}

    def pay_out(
        self,
        account_id: str,
        *,
        status: str = "paid",
        failure_code: str | None = None,
        failure_message: str | None = None,
    ) -> dict[str, Any]:
        """The connected account's automatic payout of every balance transaction not paid out yet."""
        with self.stripe._lock:
            payout_id = _id("po_test_")
            carried = [t for t in self.balance.get(account_id, []) if t["_payout"] is None]
            for txn in carried:
                txn["_payout"] = payout_id
            currencies = {t["currency"] for t in carried} or {"usd"}
            payout = {
                "id": payout_id,
                "object": "payout",
                "amount": sum(t["amount"] for t in carried),
                "arrival_date": int(time.time()) + 2 * 86400,
                "automatic": True,
                "created": int(time.time()),
                "currency": sorted(currencies)[0],
                "failure_code": failure_code if status == "failed" else None,
                "failure_message": failure_message if status == "failed" else None,
                "livemode": False,
                "metadata": {},
                "method": "standard",
                "status": status,
                "type": "bank_account",
                "_account": account_id,
            }
            self.payouts[payout_id] = payout
            return payout

    # --- Events (a Connect event names its account) ---

    def account_event(self, account_id: str, *, event_id: str | None = None) -> dict[str, Any]:
        with self.stripe._lock:
            event = self.stripe.event("account.updated", dict(self.accounts[account_id]), event_id=event_id)
        event["account"] = account_id
        return event

    def payout_event(self, type_: str, payout_id: str, *, account_id: str | None = None) -> dict[str, Any]:
        with self.stripe._lock:
            payout = self.payouts[payout_id]
            event = self.stripe.event(type_, _public(payout))
        event["account"] = account_id or payout["_account"]
        return event

    # --- The API ---

    def route(self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any] | None:
        """The Connect endpoints' answer, or None for a request this section does not handle."""
        on_account = headers.get("stripe-account")
        if method == "POST" and path == "/v1/accounts":
            return self._create_account(params)
        match = re.fullmatch(r"/v1/accounts/([^/]+)", path)
        if method == "GET" and match:
            account = self.accounts.get(match.group(1))
            return (200, dict(account)) if account else (404, _missing("account", match.group(1), "account"))
        if method == "POST" and path == "/v1/account_links":
            return self._create_link(params)
        if method == "POST" and path == "/v1/transfers":
            return self._create_transfer(params)
        match = re.fullmatch(r"/v1/transfers/([^/]+)/reversals", path)
        if method == "POST" and match:
            return self._reverse(match.group(1), params)
        match = re.fullmatch(r"/v1/payouts/([^/]+)", path)
        if method == "GET" and match:
            payout = self.payouts.get(match.group(1))
            if payout is None or payout["_account"] != on_account:  # another account's payout is not found
                return 404, _missing("payout", match.group(1), "id")
            return 200, _public(payout)
        if method == "GET" and path == "/v1/balance_transactions":
            if not on_account:
                return 400, _error("invalid_request_error", "This fake lists connected accounts' balances only.")
            return self._list_balance(on_account, params)
        return None

    def _create_account(self, params: dict[str, Any]) -> tuple[int, Any]:
        if params.get("type") != "express":
            return 400, _error("invalid_request_error", "This fake only creates Express accounts.", param="type")
        if ((params.get("capabilities") or {}).get("transfers") or {}).get("requested") != "true":
            return 400, _error("invalid_request_error", "Request the transfers capability.", param="capabilities")
        account_id = _id("acct_test_")[:26]
        due = ["external_account", "tos_acceptance.date", "individual.first_name"]
        account = {
            "id": account_id,
            "object": "account",
            "type": "express",
            "country": params.get("country") or "US",
            "email": params.get("email"),
            "metadata": params.get("metadata") or {},
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "capabilities": {"transfers": "inactive"},
            "requirements": {"currently_due": due, "eventually_due": due, "past_due": [], "disabled_reason": None},
            "created": int(time.time()),
            "default_currency": "usd",
        }
        self.accounts[account_id] = account
        return 200, dict(account)

    def _create_link(self, params: dict[str, Any]) -> tuple[int, Any]:
        account_id = params.get("account", "")
        if account_id not in self.accounts:
            return 404, _missing("account", account_id, "account")
        if params.get("type") not in ("account_onboarding", "account_update"):
            return 400, _error("invalid_request_error", "Invalid type.", param="type")
        for name in ("refresh_url", "return_url"):
            if not str(params.get(name) or "").startswith(("https://", "http://")):
                return 400, _error("invalid_request_error", f"Missing or invalid {name}.", param=name)
        now = int(time.time())
        link = {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": f"{self.stripe.url}/setup/e/{account_id}/{secrets.token_urlsafe(16)}",
        }
        self.links.append({**link, "_params": dict(params)})
        return 200, link

    def _create_transfer(self, params: dict[str, Any]) -> tuple[int, Any]:
        if self.transfer_error is not None:
            return 400, {"error": dict(self.transfer_error)}
        destination = self.accounts.get(params.get("destination", ""))
        if destination is None:
            return 404, _missing("account", params.get("destination", ""), "destination")
        if destination["capabilities"].get("transfers") != "active":
            return 400, _error(
                "invalid_request_error",
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
            )
        amount, currency = str(params.get("amount", "")), str(params.get("currency", ""))
        if not amount.isdigit() or int(amount) <= 0 or not re.fullmatch(r"[a-z]{3}", currency):
            return 400, _error("invalid_request_error", "Invalid amount or currency.", param="amount")
        now = int(time.time())
        transfer = {
            "id": _id("tr_test_"),
            "object": "transfer",
            "amount": int(amount),
            "amount_reversed": 0,
            "created": now,
            "currency": currency,
            "destination": destination["id"],
            "destination_payment": _id("py_test_"),
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "reversed": False,
            "transfer_group": params.get("transfer_group"),
        }
        self.transfers[transfer["id"]] = transfer
        self.balance.setdefault(destination["id"], []).append(
            {
                "id": _id("txn_test_"),
                "object": "balance_transaction",
                "amount": int(amount),
                "created": now,
                "currency": currency,
                "source": transfer["destination_payment"],
                "type": "payment",
                "_payout": None,
            }
        )
        return 200, dict(transfer)

    def _reverse(self, transfer_id: str, params: dict[str, Any]) -> tuple[int, Any]:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            return 404, _missing("transfer", transfer_id, "id")
        remaining = transfer["amount"] - transfer["amount_reversed"]
        amount = int(params.get("amount") or remaining)
        if amount <= 0 or amount > remaining:
            return 400, _error(
                "invalid_request_error", f"Transfer {transfer_id} has only {remaining} left to reverse.", param="amount"
            )
        reversal = {
            "id": _id("trr_test_"),
            "object": "transfer_reversal",
            "amount": amount,
            "created": int(time.time()),
            "currency": transfer["currency"],
            "metadata": params.get("metadata") or {},
            "transfer": transfer_id,
        }
        self.reversals[reversal["id"]] = reversal
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        self.balance.setdefault(transfer["destination"], []).append(
            {
                "id": _id("txn_test_"),
                "object": "balance_transaction",
                "amount": -amount,
                "created": int(time.time()),
                "currency": transfer["currency"],
                "source": transfer["destination_payment"],
                "type": "payment_refund",
                "_payout": "reversed",  # the money went back to the platform: no payout carries it
            }
        )
        return 200, reversal

    def _list_balance(self, account_id: str, params: dict[str, Any]) -> tuple[int, Any]:
        found = [
            t
            for t in self.balance.get(account_id, [])
            if (not params.get("payout") or t["_payout"] == params["payout"])
            and (not params.get("type") or t["type"] == params["type"])
        ]
        after = params.get("starting_after")
        if after:
            ids = [t["id"] for t in found]
            found = found[ids.index(after) + 1 :] if after in ids else []
        limit = int(params.get("limit") or 10)
        return 200, {
            "object": "list",
            "data": [_public(t) for t in found[:limit]],
            "has_more": len(found) > limit,
            "url": "/v1/balance_transactions",
        }


def sign_webhook(payload: dict[str, Any], secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and ``Stripe-Signature`` header exactly as Stripe sends them:
    ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the whole whsec_ secret>``."""
    body = json.dumps(payload, indent=2).encode()
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={t},v1={digest}"}


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=x`` → ``{"a": {"b": [{"c": "x"}]}}``, the way Stripe reads its form bodies."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def _id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _error(type_: str, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def _missing(kind: str, object_id: str, param: str) -> dict[str, Any]:
    return _error("invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


class _Handler(BaseHTTPRequestHandler):
    stripe: FakeStripe
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(url.query, keep_blank_values=True) + parse_qsl(raw, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = self.stripe.handle(method, url.path, decode_form(pairs), headers)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", _id("req_"))
        self.send_header("Stripe-Version", headers.get("stripe-version", API_VERSION))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    try:
        yield fake
    finally:
        fake.stop()
