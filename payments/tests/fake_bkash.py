"""A local fake of bKash's Tokenized Checkout API (URL-based checkout), for tests.

Built from bKash's published Tokenized Checkout documentation (developer.bka.sh: "Grant Token",
"Refresh Token", "Create Payment", "Execute Payment", "Query Payment", "Refund Transaction"). It
listens on 127.0.0.1 (a ``ThreadingHTTPServer`` on a free port) and answers JSON POSTs the way
``tokenized.sandbox.bka.sh/v1.2.0-beta`` does. Where a field comes from is said beside it.

Endpoints (paths below the base URL, as in the docs):
- ``POST /tokenized/checkout/token/grant``   headers ``username``, ``password``; body ``app_key``, ``app_secret``
- ``POST /tokenized/checkout/token/refresh`` same headers; body ``app_key``, ``app_secret``, ``refresh_token``
- ``POST /tokenized/checkout/create``         headers ``authorization`` (the id token), ``x-app-key``
- ``POST /tokenized/checkout/execute``        body ``paymentID``
- ``POST /tokenized/checkout/payment/status`` body ``paymentID`` (the "Query Payment" API)
- ``POST /tokenized/checkout/payment/refund`` body ``paymentID``, ``trxID``, ``amount``, ``sku``, ``reason``
And the buyer's side: ``GET /pay?paymentId=…`` (bKash's page, the ``bkashURL``) and
``POST /pay/{paymentID}/{approve|fail|cancel}``, which redirect the browser to the merchant's
``callbackURL`` with ``paymentID`` and ``status`` appended, as bKash does.

Tests drive bKash's side with ``approve`` (the buyer enters the wallet PIN), ``fail_next``,
``delay_next`` (a timeout), ``execute_refuses`` and ``tamper`` (what the query answers).
"""

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

# The sandbox credentials' shape (docs, "Sandbox credentials"): an app key, an app secret, a
# user name and a password. These are the fake's own, made up.
APP_KEY = "fake-app-key-4f6o0cjiki2rfm34"
APP_SECRET = "fake-app-secret-2is7hdktrekvrbljjh44ll3d9l1dtjo4"
USERNAME = "fakeTokenizedUser01"
PASSWORD = "fakeTokenizedUser01@S3cret!"


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]  # lower-cased names


@dataclass
class FakeBkash:
    app_key: str = APP_KEY
    app_secret: str = APP_SECRET
    username: str = USERNAME
    password: str = PASSWORD
    # Grant Token: "expires_in": 3600 (seconds) in the docs' sample answer.
    token_lifetime: int = 3600
    requests: list[RecordedRequest] = field(default_factory=list)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._id_tokens: dict[str, float] = {}  # token -> expires at (epoch seconds)
        self._refresh_tokens: set[str] = set()
        self._failures: list[int] = []
        self._delays: list[float] = []
        self._execute_refusals: dict[str, tuple[str, str]] = {}
        self._tampered: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None

    # --- Running ------------------------------------------------------------------------------

    def start(self) -> "FakeBkash":
        fake = self

        class Handler(_Handler):
            bkash = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True, name="fake-bkash"
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

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def only_payment(self) -> dict[str, Any]:
        with self._lock:
            assert len(self.payments) == 1, f"{len(self.payments)} payments"
            return next(iter(self.payments.values()))

    # --- What happens at bKash ----------------------------------------------------------------

    def approve(self, payment_id: str) -> None:
        """The buyer entered their wallet number, OTP and PIN on bKash's page: the payment may now
        be executed (until then, Execute Payment refuses it)."""
        with self._lock:
            self.payments[payment_id]["_approved"] = True

    def fail_next(self, status: int = 503, *, times: int = 1) -> None:
        """The next ``times`` API requests answer ``status`` before doing anything."""
        with self._lock:
            self._failures.extend([status] * times)

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` API requests wait this long before answering (a read timeout)."""
        with self._lock:
            self._delays.extend([seconds] * times)

    def execute_refuses(self, payment_id: str, code: str = "2023", message: str = "Insufficient Balance") -> None:
        """Execute Payment answers this error (the docs' error-code list, e.g. 2023 Insufficient
        Balance) and the transaction fails at bKash."""
        with self._lock:
            self._execute_refusals[payment_id] = (code, message)

    def tamper(self, payment_id: str, **fields: Any) -> None:
        """What Query Payment answers for this payment differs (an attacker's or a broken answer)."""
        with self._lock:
            self._tampered[payment_id] = fields

    def expire_tokens(self) -> None:
        """Every id token issued so far is past its ``expires_in``."""
        with self._lock:
            self._id_tokens = dict.fromkeys(self._id_tokens, 0.0)

    # --- The API ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, body, headers))
            failure = self._failures.pop(0) if self._failures else None
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            time.sleep(delay)
        if failure is not None:
            return failure, {"statusCode": "9999", "statusMessage": "System Error"}
        with self._lock:
            if path in ("/tokenized/checkout/token/grant", "/tokenized/checkout/token/refresh"):
                return self._token(path, body, headers)
            if not self._authorised(headers):
                # An invalid or expired id token is refused by bKash's API gateway with HTTP 401.
                return 401, {"message": "The incoming token has expired"}
            route = {
                "/tokenized/checkout/create": self._create,
                "/tokenized/checkout/execute": self._execute,
                "/tokenized/checkout/payment/status": self._query,
                "/tokenized/checkout/payment/refund": self._refund,
            }.get(path)
            if route is None:
                return 404, {"message": "Not Found"}
            return 200, route(body)

    def _token(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        credentials_ok = (
            headers.get("username") == self.username
            and headers.get("password") == self.password
            and body.get("app_key") == self.app_key
            and body.get("app_secret") == self.app_secret
        )
        if not credentials_ok:
            # Error codes list: 2001 "Invalid App Key" / wrong user name or password.
            return 200, {"statusCode": "2001", "statusMessage": "Invalid App Key"}
        if path.endswith("/refresh"):
            if body.get("refresh_token") not in self._refresh_tokens:
                # (the code is the fake's choice: any non-"0000" answer is a refusal)
                return 200, {"statusCode": "2079", "statusMessage": "Invalid refresh token"}
        id_token, refresh_token = "eyJ" + secrets.token_urlsafe(48), "eyJj" + secrets.token_urlsafe(48)
        self._id_tokens[id_token] = time.time() + self.token_lifetime
        self._refresh_tokens.add(refresh_token)
        # Grant / Refresh Token's answer: statusCode, statusMessage, id_token, token_type, expires_in, refresh_token.
        return 200, {
            "statusCode": "0000",
            "statusMessage": "Successful",
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "refresh_token": refresh_token,
        }

    def _authorised(self, headers: dict[str, str]) -> bool:
        # Every checkout API takes the id token as "authorization" and the app key as "x-app-key".
        expires = self._id_tokens.get(headers.get("authorization", ""))
        return expires is not None and expires > time.time() and headers.get("x-app-key") == self.app_key

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        required = ("mode", "payerReference", "callbackURL", "amount", "currency", "intent", "merchantInvoiceNumber")
        if any(not isinstance(body.get(name), str) or not body[name] for name in required):
            return {"statusCode": "2065", "statusMessage": "Mandatory field missing"}
        # Create Payment's paymentID: "TR0011" + random characters + a millisecond timestamp.
        payment_id = f"TR0011{secrets.token_hex(4)}{int(time.time() * 1000)}"
        payment = {
            "paymentID": payment_id,
            "mode": body["mode"],
            "payerReference": body["payerReference"],
            "callbackURL": body["callbackURL"],
            "amount": body["amount"],  # a decimal string, echoed as sent
            "currency": body["currency"],
            "intent": body["intent"],
            "merchantInvoiceNumber": body["merchantInvoiceNumber"],
            "paymentCreateTime": _bkash_time(),
            "transactionStatus": "Initiated",  # Create Payment's answer: "Initiated"
            "_approved": False,
            "_refunded": 0,
        }
        self.payments[payment_id] = payment
        callback = body["callbackURL"]
        # Create Payment's answer: paymentID, bkashURL, callbackURL, the three callback URLs with
        # ``paymentID`` and ``status`` appended, amount, intent, currency, paymentCreateTime,
        # transactionStatus, merchantInvoiceNumber, statusCode, statusMessage.
        return {
            "paymentID": payment_id,
            "bkashURL": f"{self.url}/pay?paymentId={payment_id}",
            "callbackURL": callback,
            "successCallbackURL": _with_query(callback, payment_id, "success"),
            "failureCallbackURL": _with_query(callback, payment_id, "failure"),
            "cancelledCallbackURL": _with_query(callback, payment_id, "cancel"),
            "amount": body["amount"],
            "intent": body["intent"],
            "currency": body["currency"],
            "paymentCreateTime": payment["paymentCreateTime"],
            "transactionStatus": "Initiated",
            "merchantInvoiceNumber": body["merchantInvoiceNumber"],
            "statusCode": "0000",
            "statusMessage": "Successful",
        }

    def _execute(self, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(str(body.get("paymentID")))
        if payment is None:
            return {"statusCode": "2056", "statusMessage": "Invalid Payment State"}
        if payment["transactionStatus"] == "Completed":
            # Error codes list: 2117 "Payment execution already been called before".
            return {"statusCode": "2117", "statusMessage": "Payment execution already been called before"}
        if payment["transactionStatus"] != "Initiated" or not payment["_approved"]:
            return {"statusCode": "2056", "statusMessage": "Invalid Payment State"}
        refusal = self._execute_refusals.get(payment["paymentID"])
        if refusal is not None:
            payment["transactionStatus"] = "Failed"
            return {"statusCode": refusal[0], "statusMessage": refusal[1]}
        payment.update(
            transactionStatus="Completed",
            trxID="B" + secrets.token_hex(5).upper()[:9],  # Execute Payment's trxID: bKash's transaction id
            paymentExecuteTime=_bkash_time(),
            customerMsisdn="01770618575",  # the payer's wallet number
        )
        # Execute Payment's answer: paymentID, customerMsisdn, payerReference, paymentExecuteTime,
        # trxID, transactionStatus, amount, currency, intent, merchantInvoiceNumber, statusCode, statusMessage.
        return {**_public(payment), "statusCode": "0000", "statusMessage": "Successful"}

    def _query(self, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(str(body.get("paymentID")))
        if payment is None:
            return {"statusCode": "2056", "statusMessage": "Invalid Payment State"}
        # Query Payment's answer: paymentID, mode, paymentCreateTime, paymentExecuteTime, trxID,
        # transactionStatus, amount, currency, intent, merchantInvoiceNumber, payerReference,
        # statusCode, statusMessage.
        answer = {**_public(payment), "statusCode": "0000", "statusMessage": "Successful"}
        answer.update(self._tampered.get(payment["paymentID"], {}))
        return answer

    def _refund(self, body: dict[str, Any]) -> dict[str, Any]:
        payment = self.payments.get(str(body.get("paymentID")))
        if payment is None or payment.get("trxID") != body.get("trxID") or payment["transactionStatus"] != "Completed":
            return {"statusCode": "2056", "statusMessage": "Invalid Payment State"}
        try:
            amount = round(float(body.get("amount") or "0") * 100)
        except ValueError:
            return {"statusCode": "2065", "statusMessage": "Mandatory field missing"}
        original = round(float(payment["amount"]) * 100)
        if amount <= 0 or payment["_refunded"] + amount > original:
            # A refund API error (the code is the fake's choice; the docs list the refund's errors).
            return {"statusCode": "2071", "statusMessage": "Refund amount exceeds the original amount"}
        payment["_refunded"] += amount
        refund = {
            "completedTime": _bkash_time(),
            "transactionStatus": "Completed",
            "originalTrxID": payment["trxID"],
            "refundTrxID": "R" + secrets.token_hex(5).upper()[:9],
            "amount": body["amount"],
            "currency": payment["currency"],
            "charge": "0.00",
            "sku": body.get("sku"),
            "reason": body.get("reason"),
        }
        self.refunds.append(refund)
        # Refund Transaction's answer: completedTime, transactionStatus, originalTrxID, refundTrxID,
        # amount, currency, charge, statusCode, statusMessage.
        public = {k: v for k, v in refund.items() if k not in ("sku", "reason")}
        return {**public, "statusCode": "0000", "statusMessage": "Successful"}

    # --- The buyer's page ---------------------------------------------------------------------

    def page(self, payment_id: str) -> str:
        return (
            "<!doctype html><title>bKash (fake)</title>"
            f"<form method=post action=/pay/{payment_id}/approve><button>Confirm</button></form>"
            f"<form method=post action=/pay/{payment_id}/cancel><button>Close</button></form>"
        )

    def buyer_acts(self, payment_id: str, action: str) -> str | None:
        """The buyer's action on bKash's page; answers where bKash sends the browser."""
        with self._lock:
            payment = self.payments.get(payment_id)
            if payment is None or action not in ("approve", "fail", "cancel"):
                return None
            if action == "approve":
                payment["_approved"] = True
            status = {"approve": "success", "fail": "failure", "cancel": "cancel"}[action]
            return _with_query(payment["callbackURL"], payment_id, status)


def _public(payment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payment.items() if not k.startswith("_")}


def _with_query(callback: str, payment_id: str, status: str) -> str:
    # bKash appends ``paymentID`` and ``status`` to the merchant's callbackURL.
    return f"{callback}?{urlencode({'paymentID': payment_id, 'status': status})}"


def _bkash_time() -> str:
    # bKash's time format in answers, e.g. "2025-12-09T16:12:43:828 GMT+0600".
    return time.strftime("%Y-%m-%dT%H:%M:%S:000 GMT+0000", time.gmtime())


class _Handler(BaseHTTPRequestHandler):
    bkash: FakeBkash
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        payment_id = (parse_qs(url.query).get("paymentId") or [""])[0]
        if url.path == "/pay" and payment_id in self.bkash.payments:
            self._send(200, self.bkash.page(payment_id).encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if url.path.startswith("/pay/"):
            _, _, payment_id, action = (url.path.split("/") + ["", ""])[:4]
            location = self.bkash.buyer_acts(payment_id, action)
            if location is None:
                self._send(404, b"not found", "text/plain")
                return
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not isinstance(body, dict) or "application/json" not in headers.get("content-type", ""):
            self._send(400, b'{"message": "Bad Request"}', "application/json")
            return
        status, answer = self.bkash.handle("POST", url.path, body, headers)
        self._send(status, json.dumps(answer).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def fake_bkash() -> Iterator[FakeBkash]:
    fake = FakeBkash().start()
    try:
        yield fake
    finally:
        fake.stop()
