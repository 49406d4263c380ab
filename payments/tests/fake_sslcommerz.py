"""A local fake of the parts of SSLCommerz the marketplace uses, for tests.

Built from SSLCommerz's published v4 documentation (https://developer.sslcommerz.com/doc/v4/, "[v4]"
below) and its official PHP library (github.com/sslcommerz/SSLCommerz-PHP, "[php]": the
``SSLCOMMERZ_hash_varify`` and ``validate`` functions of ``lib/SslCommerzNotification.php``). It
listens on 127.0.0.1 (a ``ThreadingHTTPServer`` on a free port) and answers as sandbox.sslcommerz.com:

- ``POST /gwprocess/v4/api.php`` — "Create and Get Session" [v4]: form fields in, JSON out
  (``status`` SUCCESS|FAILED, ``failedreason``, ``sessionkey``, ``GatewayPageURL``...).
- ``GET /EasyCheckOut/{sessionkey}`` — the hosted page (here: a form with Pay, Fail and Cancel).
- ``POST /EasyCheckOut/{sessionkey}`` with ``outcome`` — the buyer's choice on it: the transaction
  is recorded, the signed IPN is posted to the session's ``ipn_url`` (server to server), and the
  answer is the page that posts the browser back to ``success_url``/``fail_url``/``cancel_url``.
- ``GET /validator/api/validationserverAPI.php?val_id=&store_id=&store_passwd=&v=1&format=json`` —
  "Order Validation API" [v4]; a second validation of one ``val_id`` says VALIDATED instead of VALID.
- ``GET /validator/api/merchantTransIDvalidationAPI.php`` — "Transaction Query API" by ``tran_id``
  (``APIConnect``, ``no_of_trans_found``, ``element``), "Initiate the Refund" (``bank_tran_id``,
  ``refund_amount``, ``refund_remarks``, ``refe_id``) and "Query the Status of a Refund Request"
  (``refund_ref_id``) [v4].

The tests drive what happens at SSLCommerz with ``pay``, ``decline``, ``tamper`` and ``fail_next``,
and build IPNs with ``ipn_body``, signed exactly as SSLCommerz signs them ([php] and [v4] "IPN").
"""

import hashlib
import html
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

# [v4] "Create and Get Session": the parameters the session request must carry.
SESSION_MANDATORY = (
    "store_id",
    "store_passwd",
    "total_amount",  # decimal (10,2), 10.00 to 500000.00 BDT
    "currency",  # 3 letters
    "tran_id",  # string (30): "unique transaction ID to identify your order in both your end and SSLCommerz"
    "success_url",
    "fail_url",
    "cancel_url",
    "cus_name",
    "cus_email",
    "cus_add1",
    "cus_city",
    "cus_postcode",
    "cus_country",
    "cus_phone",
    "shipping_method",  # "YES" / "NO"
    "product_name",
    "product_category",
    "product_profile",  # general, physical-goods, non-physical-goods, airline-tickets, ...
)
# [v4] IPN: the fields SSLCommerz posts and lists (sorted) in verify_key.
IPN_SIGNED = (
    "amount",
    "bank_tran_id",
    "base_fair",
    "card_brand",
    "card_issuer",
    "card_issuer_country",
    "card_issuer_country_code",
    "card_no",
    "card_type",
    "currency",
    "currency_amount",
    "currency_rate",
    "currency_type",
    "risk_level",
    "risk_title",
    "status",
    "store_amount",
    "store_id",
    "tran_date",
    "tran_id",
    "val_id",
    "value_a",
    "value_b",
    "value_c",
    "value_d",
)


def sign(fields: dict[str, str], store_password: str) -> str:
    """[php] ``SSLCOMMERZ_hash_varify``: the posted fields named in ``verify_key``, plus
    ``store_passwd`` = md5(store password), ``ksort``ed, joined ``key=value`` with ``&``, md5."""
    data = {k: fields[k] for k in fields["verify_key"].split(",") if k in fields}
    data["store_passwd"] = hashlib.md5(store_password.encode()).hexdigest()  # noqa: S324 - SSLCommerz's algorithm
    return hashlib.md5("&".join(f"{k}={data[k]}" for k in sorted(data)).encode()).hexdigest()  # noqa: S324


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]


@dataclass
class FakeSSLCommerz:
    store_id: str = "testbox0fake1store"
    store_password: str = "testbox0fake1store@ssl-Pw9"
    requests: list[RecordedRequest] = field(default_factory=list)
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)  # by sessionkey
    transactions: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # by tran_id
    validations: dict[str, dict[str, str]] = field(default_factory=dict)  # by val_id
    refunds: dict[str, dict[str, str]] = field(default_factory=dict)  # by refund_ref_id
    # What a refund's status query answers: [v4] "refunded", "processing" or "cancelled".
    refund_outcome: str = "refunded"
    # Whether a buyer's choice on the hosted page posts the IPN (False: the IPN never comes).
    send_ipn: bool = True

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._failures: list[int] = []
        self._server: ThreadingHTTPServer | None = None
        self.ipn_answers: list[int] = []

    # --- Running ------------------------------------------------------------------------------

    def start(self) -> "FakeSSLCommerz":
        fake = self

        class Handler(_Handler):
            sslcommerz = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True, name="fake-sslcommerz"
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

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def only_session(self) -> dict[str, str]:
        with self._lock:
            assert len(self.sessions) == 1, f"{len(self.sessions)} sessions"
            return next(iter(self.sessions.values()))

    # --- What happens at SSLCommerz -----------------------------------------------------------

    def fail_next(self, status: int = 503, *, times: int = 1) -> None:
        """The next ``times`` requests answer ``status`` with an HTML error page (before doing anything)."""
        with self._lock:
            self._failures.extend([status] * times)

    def pay(self, tran_id: str, *, risk_level: str = "0") -> dict[str, str]:
        """The buyer paid on the hosted page: a VALID transaction with its val_id and bank_tran_id
        ([v4] "Order Validation API" response fields). Answers the IPN's fields (unsigned)."""
        with self._lock:
            session = self._session_for(tran_id)
            val_id = _id("", 24)
            record = {
                "status": "VALID",
                "tran_date": "2026-12-03 18:00:00",  # Asia/Dhaka local time, "Y-m-d H:i:s"
                "tran_id": tran_id,
                "val_id": val_id,
                "amount": session["total_amount"],
                "store_amount": f"{Decimal(session['total_amount']) * Decimal('0.975'):.2f}",  # less the fee
                "currency": "BDT",  # the transaction's currency: always BDT
                "bank_tran_id": _id("", 20),
                "card_type": "BKASH-BKash",
                "card_no": "",
                "card_issuer": "BKash Mobile Banking",
                "card_brand": "MOBILEBANKING",
                "card_issuer_country": "Bangladesh",
                "card_issuer_country_code": "BD",
                "currency_type": session["currency"],  # what the session asked
                "currency_amount": session["total_amount"],
                "currency_rate": "1.0000",
                "base_fair": "0.00",
                "value_a": session.get("value_a", ""),
                "value_b": "",
                "value_c": "",
                "value_d": "",
                "risk_level": risk_level,  # [v4] 0: safe, 1: risky
                "risk_title": "Safe" if risk_level == "0" else "Risky",
                "store_id": self.store_id,
            }
            self.validations[val_id] = dict(record)
            self.transactions.setdefault(tran_id, []).append(
                {**record, "validated_on": "", "APIConnect": "DONE", "error": ""}
            )
            return record

    def decline(self, tran_id: str, *, status: str = "FAILED") -> dict[str, str]:
        """The payment failed (or was CANCELLED by the buyer): no val_id, no bank transaction."""
        with self._lock:
            session = self._session_for(tran_id)
            record = {
                "status": status,
                "tran_date": "2026-12-03 18:00:00",
                "tran_id": tran_id,
                "amount": session["total_amount"],
                "currency": "BDT",
                "currency_type": session["currency"],
                "currency_amount": session["total_amount"],
                "error": "Cancelled by User" if status == "CANCELLED" else "Declined by the issuer",
                "store_id": self.store_id,
            }
            self.transactions.setdefault(tran_id, []).append({**record, "APIConnect": "DONE", "val_id": ""})
            return record

    def tamper(self, val_id: str, **fields: str) -> None:
        """What the validation API answers for ``val_id`` differs from what was paid."""
        with self._lock:
            self.validations[val_id].update(fields)

    def ipn_body(self, record: dict[str, str], *, password: str | None = None, **override: str) -> bytes:
        """The IPN SSLCommerz posts for ``record``: a form, ``verify_key`` listing the fields it
        signs (sorted), ``verify_sign`` over them ([php]). ``override`` changes fields after signing."""
        fields = {k: v for k, v in record.items() if k in IPN_SIGNED or k == "error"}
        signed = sorted(k for k in fields if k in IPN_SIGNED or k == "error")
        fields["verify_key"] = ",".join(signed)
        fields["verify_sign"] = sign(fields, self.store_password if password is None else password)
        fields.update(override)
        return urlencode(fields).encode()

    def _session_for(self, tran_id: str) -> dict[str, str]:
        matches = [s for s in self.sessions.values() if s["tran_id"] == tran_id]
        assert matches, f"no session for {tran_id}"
        return matches[-1]

    # --- The API ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, str, str]:
        """(status, content type, body) for one request."""
        with self._lock:
            self.requests.append(RecordedRequest(method, path, params))
            if self._failures:
                return self._failures.pop(0), "text/html", "<html><body>503 Service Unavailable</body></html>"
            if method == "POST" and path == "/gwprocess/v4/api.php":
                return self._json(self._open_session(params))
            if path.startswith("/EasyCheckOut/"):
                key = path.removeprefix("/EasyCheckOut/")
                session = self.sessions.get(key)
                if session is None:
                    return 404, "text/html", "<html><body>Session expired</body></html>"
                if method == "GET":
                    return 200, "text/html", _hosted_page(key, session)
                record, back = self._choose(session, params.get("outcome", ""))
            else:
                return self._api(method, path, params)
        # Outside the lock: the merchant validates the IPN with this fake while the IPN is posted.
        return self._send_ipn_and_return(session, record, back)

    def _api(self, method: str, path: str, params: dict[str, str]) -> tuple[int, str, str]:
        with self._lock:
            if method == "GET" and path == "/validator/api/validationserverAPI.php":
                return self._json(self._validate(params))
            if method == "GET" and path == "/validator/api/merchantTransIDvalidationAPI.php":
                if not self._credentials_ok(params):
                    return self._json({"APIConnect": "INVALID_REQUEST"})  # [v4] APIConnect values
                if "tran_id" in params:
                    return self._json(self._query(params["tran_id"]))
                if "bank_tran_id" in params:
                    return self._json(self._refund(params))
                if "refund_ref_id" in params:
                    return self._json(self._refund_status(params["refund_ref_id"]))
            return 404, "text/html", "<html><body>Not Found</body></html>"

    def _json(self, body: dict[str, Any]) -> tuple[int, str, str]:
        return 200, "application/json", json.dumps(body)

    def _credentials_ok(self, params: dict[str, str]) -> bool:
        return params.get("store_id") == self.store_id and params.get("store_passwd") == self.store_password

    def _open_session(self, params: dict[str, str]) -> dict[str, Any]:
        if not self._credentials_ok(params):
            return {"status": "FAILED", "failedreason": "Store Credential Error Or Store is De-active"}
        missing = [name for name in SESSION_MANDATORY if not params.get(name)]
        if missing:
            return {"status": "FAILED", "failedreason": f"Invalid Information: {', '.join(missing)} is missing"}
        amount = Decimal(params["total_amount"])
        if not Decimal("10.00") <= amount <= Decimal("500000.00"):
            return {"status": "FAILED", "failedreason": "Invalid Information: total_amount out of range"}
        key = _id("", 32).upper()
        self.sessions[key] = dict(params)
        page = f"{self.url}/EasyCheckOut/{key}"
        # [v4] the session answer: status, failedreason, sessionkey, gw, redirectGatewayURL, ...,
        # GatewayPageURL, storeBanner, storeLogo, desc (one entry per payment method), is_direct_pay_enable.
        return {
            "status": "SUCCESS",
            "failedreason": "",
            "sessionkey": key,
            "gw": {"visa": "city_visa,ebl_visa", "mobilebanking": "bkash,dbblmobilebanking"},
            "redirectGatewayURL": f"{page}?gw=",
            "directPaymentURLBank": "",
            "directPaymentURLCard": "",
            "directPaymentURL": "",
            "redirectGatewayURLFailed": "",
            "GatewayPageURL": page,
            "storeBanner": f"{self.url}/stores/logos/demoLogo.png",
            "storeLogo": f"{self.url}/stores/logos/demoLogo.png",
            "desc": [
                {"name": "BKash", "type": "mobilebanking", "gw": "bkash", "redirectGatewayURL": f"{page}?gw=bkash"}
            ],
            "is_direct_pay_enable": "0",
        }

    def _choose(self, session: dict[str, str], outcome: str) -> tuple[dict[str, str], str]:
        tran_id = session["tran_id"]
        if outcome == "pay":
            return self.pay(tran_id), session["success_url"]
        if outcome == "cancel":
            return self.decline(tran_id, status="CANCELLED"), session["cancel_url"]
        return self.decline(tran_id), session["fail_url"]

    def _send_ipn_and_return(self, session: dict[str, str], record: dict[str, str], back: str) -> tuple[int, str, str]:
        if self.send_ipn and session.get("ipn_url"):
            answer = requests.post(
                session["ipn_url"],
                data=self.ipn_body(record),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=30,
            )
            self.ipn_answers.append(answer.status_code)
        # The browser is posted back with the transaction's fields (unsigned as far as we rely on them).
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in record.items()
        )
        page = f'<html><body><form method="post" action="{html.escape(back)}">{inputs}</form></body></html>'
        return 200, "text/html", page

    def _validate(self, params: dict[str, str]) -> dict[str, Any]:
        record = self.validations.get(params.get("val_id", ""))
        if record is None or not self._credentials_ok(params):
            return {"status": "INVALID_TRANSACTION", "APIConnect": "DONE"}
        answer = {**record, "APIConnect": "DONE", "validated_on": "2026-12-03 18:00:05", "gw_version": "v4"}
        if record["status"] == "VALID":
            record["status"] = "VALIDATED"  # [v4] a val_id validated before answers VALIDATED
            for element in self.transactions.get(record["tran_id"], []):
                if element.get("val_id") == record["val_id"]:
                    element["status"] = "VALIDATED"
        return answer

    def _query(self, tran_id: str) -> dict[str, Any]:
        elements = [dict(e) for e in self.transactions.get(tran_id, [])]
        return {"APIConnect": "DONE", "no_of_trans_found": len(elements), "element": elements}

    def _refund(self, params: dict[str, str]) -> dict[str, Any]:
        bank_tran_id = params["bank_tran_id"]
        paid = [v for v in self.validations.values() if v["bank_tran_id"] == bank_tran_id]
        if not paid or not params.get("refund_amount") or not params.get("refund_remarks"):
            return {
                "APIConnect": "DONE",
                "bank_tran_id": bank_tran_id,
                "status": "failed",
                "errorReason": "Invalid request",
            }
        refunded = sum(Decimal(r["refund_amount"]) for r in self.refunds.values() if r["bank_tran_id"] == bank_tran_id)
        if refunded + Decimal(params["refund_amount"]) > Decimal(paid[0]["amount"]):
            return {
                "APIConnect": "DONE",
                "bank_tran_id": bank_tran_id,
                "status": "failed",
                "errorReason": "Refund amount exceeds the transaction amount",
            }
        ref = _id("", 16)
        self.refunds[ref] = {
            "bank_tran_id": bank_tran_id,
            "tran_id": paid[0]["tran_id"],
            "refund_amount": params["refund_amount"],
            "refund_remarks": params["refund_remarks"],
            "refe_id": params.get("refe_id", ""),
        }
        # [v4] "Initiate the Refund" answer: APIConnect, bank_tran_id, trans_id, refund_ref_id, status, errorReason
        return {
            "APIConnect": "DONE",
            "bank_tran_id": bank_tran_id,
            "trans_id": paid[0]["tran_id"],
            "refund_ref_id": ref,
            "status": "success",
            "errorReason": "",
        }

    def _refund_status(self, ref: str) -> dict[str, Any]:
        refund = self.refunds.get(ref)
        if refund is None:
            return {
                "APIConnect": "DONE",
                "refund_ref_id": ref,
                "status": "failed",
                "errorReason": "Invalid refund_ref_id",
            }
        # [v4] "Query the Status of a Refund Request": APIConnect, bank_tran_id, tran_id, refund_ref_id,
        # initiated_on, refunded_on, status (refunded | processing | cancelled), errorReason
        return {
            "APIConnect": "DONE",
            "bank_tran_id": refund["bank_tran_id"],
            "tran_id": refund["tran_id"],
            "refund_ref_id": ref,
            "initiated_on": "2026-12-03 18:10:00",
            "refunded_on": "2026-12-03 18:10:00" if self.refund_outcome == "refunded" else "",
            "status": self.refund_outcome,
            "errorReason": "",
        }


def _hosted_page(key: str, session: dict[str, str]) -> str:
    buttons = "".join(
        f'<button type="submit" name="outcome" value="{outcome}">{label}</button>'
        for outcome, label in (("pay", "Pay"), ("fail", "Fail"), ("cancel", "Cancel"))
    )
    return (
        f"<html><body><h1>Pay {html.escape(session['total_amount'])} {html.escape(session['currency'])}</h1>"
        f'<form method="post" action="/EasyCheckOut/{key}">{buttons}</form></body></html>'
    )


def _id(prefix: str, length: int) -> str:
    return prefix + secrets.token_hex(length)[:length]


class _Handler(BaseHTTPRequestHandler):
    sslcommerz: FakeSSLCommerz
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(url.query, keep_blank_values=True) + parse_qsl(raw, keep_blank_values=True))
        status, content_type, body = self.sslcommerz.handle(method, url.path, params)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def fake_sslcommerz() -> Iterator[FakeSSLCommerz]:
    fake = FakeSSLCommerz().start()
    try:
        yield fake
    finally:
        fake.stop()
