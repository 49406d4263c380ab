"""The one outbound client: which addresses it refuses, that it resolves once and connects to the
checked address, follows no redirect, times out, caps the answer and fails with one neutral text."""

import datetime as dt
import ipaddress
import logging
import ssl
import threading
import time
from unittest import mock

import pytest

from marketplace.core import outbound_http
from marketplace.core.outbound_http import (
    UNREACHABLE,
    OutboundError,
    OutboundPolicy,
    address_is_refused,
    outbound_post,
    outbound_url_check,
    resolve_public,
)

from .outbound_servers import LocalHTTP, RawTCP, closed_port, resolving

PRODUCTION = OutboundPolicy(allow_http=False, allow_private=False)
PUBLIC_HTTP = OutboundPolicy(allow_http=True, allow_private=False)
LOCAL = OutboundPolicy(allow_http=True, allow_private=True)  # development and tests only


@pytest.fixture
def server():
    local = LocalHTTP()
    yield local
    local.close()


@pytest.fixture
def loopback_counts_as_public():
    """Only 127.0.0.1 passes the address check, so that the guarded path (resolve, check, pin) can
    be driven against a local server; every other address keeps its real verdict."""
    real = outbound_http.address_is_refused

    def verdict(ip):
        return False if str(ip) == "127.0.0.1" else real(ip)

    with mock.patch.object(outbound_http, "address_is_refused", side_effect=verdict):
        yield


def post(url, policy=LOCAL, **kwargs):
    return outbound_post(url=url, body=b"{}", headers={"Content-Type": "application/json"}, policy=policy, **kwargs)


# --- Addresses -----------------------------------------------------------------------------------

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "100.127.255.254",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.170",
    "192.0.2.10",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "::",
    "::1",
    "fe80::1",
    "fe80::a9fe:a9fe",
    "fec0::1",  # site-local
    "fc00::1",
    "fd00:ec2::254",  # cloud metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::ffff:0:a9fe:a9fe",  # IPv4-translated
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2002:5db8:d70e::1",  # 6to4 of a public address: the whole range is refused
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",
    "64:ff9b::5db8:d70e",  # NAT64 of a public address: the whole prefix is refused
    "64:ff9b:1::a00:1",  # NAT64, local-use prefix
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
    "100::1",
]
PUBLIC_ADDRESSES = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "::ffff:93.184.215.14", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_each_refused_address_form(address):
    assert address_is_refused(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_pass(address):
    assert address_is_refused(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_name_resolving_to_a_refused_address_is_refused(address):
    with resolving({"hooks.example.test": [address]}):
        with pytest.raises(OutboundError) as refused:
            resolve_public("hooks.example.test", 443)
    assert str(refused.value) == UNREACHABLE
    assert refused.value.retryable is False


def test_one_refused_record_among_public_ones_refuses_the_whole_answer():
    with resolving({"mixed.example.test": ["93.184.215.14", "2606:4700:4700::1111", "10.0.0.5"]}):
        with pytest.raises(OutboundError) as refused:
            resolve_public("mixed.example.test", 443)
    assert "10.0.0.5" in refused.value.reason
    with resolving({"public.example.test": ["93.184.215.14", "2606:4700:4700::1111"]}):
        assert resolve_public("public.example.test", 443) == ["93.184.215.14", "2606:4700:4700::1111"]


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.1", "0177.0.0.1", "0x7f000001", "[::ffff:7f00:1]"])
def test_numeric_spellings_of_loopback_are_judged_by_the_address_they_reach(host):
    with pytest.raises(OutboundError):
        resolve_public(host.strip("[]"), 80)


def test_a_name_that_does_not_resolve_is_a_retryable_failure_with_the_same_text():
    with resolving({"gone.example.test": []}):
        with pytest.raises(OutboundError) as failed:
            resolve_public("gone.example.test", 443)
    assert (str(failed.value), failed.value.retryable) == (UNREACHABLE, True)


# --- URLs when saved -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://hooks.example.com/in", "Must be a valid https:// URL."),
        ("ftp://hooks.example.com/in", "Must be a valid https:// URL."),
        ("file:///etc/passwd", "Must be a valid https:// URL."),
        ("gopher://127.0.0.1:6379/_INFO", "Must be a valid https:// URL."),
        ("https://hooks.example.com/in\r\nX-Injected: 1", "Must be a valid https:// URL."),
        ("https://hooks.example.com:99999/in", "Must be a valid https:// URL."),
        ("https:///nohost", "Must be a valid https:// URL."),
        ("https://user:pw@hooks.example.com/in", "Must not carry a user name or password."),
        ("https://user@hooks.example.com/in", "Must not carry a user name or password."),
        ("https://127.0.0.1/in", UNREACHABLE),
        ("https://[::1]/in", UNREACHABLE),
        ("https://169.254.169.254/latest/meta-data/", UNREACHABLE),
        ("https://[::ffff:169.254.169.254]/", UNREACHABLE),
        ("https://[2002:7f00:1::1]/", UNREACHABLE),
        ("https://[64:ff9b::a9fe:a9fe]/", UNREACHABLE),
        ("https://metadata.example.test/", UNREACHABLE),
        ("https://gone.example.test/", UNREACHABLE),
    ],
)
def test_urls_refused_when_saved_say_only_what_the_seller_can_see(url, detail):
    with resolving({"metadata.example.test": ["169.254.169.254"], "gone.example.test": []}):
        with pytest.raises(OutboundError) as refused:
            outbound_url_check(url, policy=PRODUCTION)
    assert refused.value.detail == detail
    assert str(refused.value) == UNREACHABLE


def test_a_public_https_url_is_accepted_and_http_only_where_the_policy_allows_it():
    with resolving({"hooks.example.test": ["93.184.215.14"]}):
        outbound_url_check("https://hooks.example.test/in", policy=PRODUCTION)
        outbound_url_check("http://hooks.example.test/in", policy=PUBLIC_HTTP)
        with pytest.raises(OutboundError):
            outbound_url_check("http://hooks.example.test/in", policy=PRODUCTION)


def test_local_development_may_save_loopback_urls():
    outbound_url_check("http://127.0.0.1:8000/demo/partner/fulfill", policy=LOCAL)


# --- Calls ---------------------------------------------------------------------------------------


def test_a_refused_address_is_never_connected_to(server):
    for url in (server.url, f"https://127.0.0.1:{server.port}/", "https://10.0.0.1/"):
        with pytest.raises(OutboundError) as refused:
            post(url, policy=PUBLIC_HTTP)
        assert (str(refused.value), refused.value.retryable) == (UNREACHABLE, False)
    assert server.requests == []


def test_the_error_text_is_the_same_for_a_closed_port_an_open_port_and_a_refused_address(server):
    raw = RawTCP()
    try:
        seen = set()
        # Production: loopback is refused whatever listens there.
        for url in (server.url, f"http://127.0.0.1:{closed_port()}/", f"http://127.0.0.1:{raw.port}/"):
            with pytest.raises(OutboundError) as failed:
                post(url, policy=PUBLIC_HTTP)
            seen.add(str(failed.value))
        assert (server.requests, raw.connections) == ([], 0)
        # Where local addresses are allowed: a closed port, a port that speaks something else.
        for url in (f"http://127.0.0.1:{closed_port()}/", f"http://127.0.0.1:{raw.port}/"):
            with pytest.raises(OutboundError) as failed:
                post(url, policy=LOCAL)
            seen.add(str(failed.value))
        assert raw.connections == 1
    finally:
        raw.close()
    assert seen == {UNREACHABLE}


def test_the_reason_goes_to_the_log_but_never_the_path_or_query(server, caplog):
    caplog.set_level(logging.INFO, logger="marketplace.core.outbound_http")
    with resolving({"inside.example.test": ["10.9.8.7"]}):
        with pytest.raises(OutboundError) as refused:
            post("https://inside.example.test/hook?token=tok_SECRET123", policy=PRODUCTION)
    assert "10.9.8.7" not in str(refused.value)
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "marketplace.core.outbound_http")
    assert "inside.example.test" in logged and "10.9.8.7" in logged
    assert "tok_SECRET123" not in logged and "/hook" not in logged
    assert {r.levelname for r in caplog.records if r.name == "marketplace.core.outbound_http"} == {"INFO"}


def test_the_host_is_resolved_once_and_the_socket_connects_to_the_checked_address(server, loopback_counts_as_public):
    """DNS rebinding within one call: a second lookup would answer 127.0.0.2, where nothing listens."""
    answers = iter([["127.0.0.1"]])
    with resolving({"shop.example.test": lambda: next(answers, ["127.0.0.2"])}) as lookups:
        response = post(f"http://shop.example.test:{server.port}/fulfill", policy=PUBLIC_HTTP)
    assert response.status_code == 200 and response.content == b"ok"
    assert lookups == {"shop.example.test": 1}
    [request] = server.requests
    assert request.headers["host"] == f"shop.example.test:{server.port}"  # the name, not the address
    assert request.path == "/fulfill"


def test_a_name_public_when_saved_and_private_when_called_is_refused_at_the_call(server):
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])
    with resolving({"flip.example.test": lambda: next(answers)}):
        outbound_url_check(f"http://flip.example.test:{server.port}/", policy=PUBLIC_HTTP)
        with pytest.raises(OutboundError) as refused:
            post(f"http://flip.example.test:{server.port}/", policy=PUBLIC_HTTP)
    assert (str(refused.value), refused.value.retryable) == (UNREACHABLE, False)
    assert server.requests == []


def test_any_refused_record_at_call_time_refuses_the_call(server, loopback_counts_as_public):
    with resolving({"shop.example.test": ["127.0.0.1", "10.0.0.1"]}):
        with pytest.raises(OutboundError):
            post(f"http://shop.example.test:{server.port}/", policy=PUBLIC_HTTP)
    assert server.requests == []


def _self_signed(tmp_path, name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(tz=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_to_a_pinned_address_sends_the_host_name_and_verifies_the_certificate(
    server, tmp_path, loopback_counts_as_public
):
    """The socket goes to the checked address, but SNI carries the name and the certificate is
    verified (a self-signed one is refused): pinning never turns verification off."""
    cert, key = _self_signed(tmp_path, "shop.example.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    with resolving({"shop.example.test": ["127.0.0.1"]}):
        with pytest.raises(OutboundError) as failed:
            post(f"https://shop.example.test:{server.port}/", policy=PRODUCTION)
    assert str(failed.value) == UNREACHABLE
    assert names == ["shop.example.test"]
    assert server.requests == []


@pytest.mark.parametrize("policy", [LOCAL, PUBLIC_HTTP])
def test_a_redirect_is_not_followed(server, policy, loopback_counts_as_public):
    inside = LocalHTTP((200, {}, b"INTERNAL-ANSWER"))
    try:
        server.answer = (302, {"Location": f"http://127.0.0.1:{inside.port}/latest/meta-data/"}, b"")
        with resolving({"shop.example.test": ["127.0.0.1"]}):
            with pytest.raises(OutboundError) as failed:
                post(f"http://shop.example.test:{server.port}/", policy=policy)
        assert (str(failed.value), failed.value.retryable) == (UNREACHABLE, False)
        assert len(server.requests) == 1
        assert inside.requests == []
    finally:
        inside.close()


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_every_redirect_status_is_a_failure(server, status):
    server.answer = (status, {"Location": "http://169.254.169.254/"}, b"")
    with pytest.raises(OutboundError):
        post(server.url)


def test_an_oversized_answer_is_refused_or_cut_at_the_cap(server):
    server.answer = (200, {}, b"x" * 200_000)
    with pytest.raises(OutboundError) as failed:
        post(server.url, max_bytes=1024)
    assert (str(failed.value), failed.value.retryable) == (UNREACHABLE, False)
    cut = post(server.url, max_bytes=1024, truncate=True)
    assert (cut.status_code, len(cut.content), cut.truncated) == (200, 1024, True)
    whole = post(server.url, max_bytes=200_000)
    assert (len(whole.content), whole.truncated) == (200_000, False)


def test_an_oversized_answer_without_a_length_is_read_only_up_to_the_cap(server):
    sent = []

    def endless(request, handler):
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(2000):  # up to 16 MB, closed by the client long before
                handler.wfile.write(b"y" * 8192)
                sent.append(1)
        except OSError:
            pass

    server.answer = endless
    with pytest.raises(OutboundError):
        post(server.url, max_bytes=4096)
    time.sleep(0.2)
    assert len(sent) < 2000


def test_a_slow_answer_times_out(server):
    release = threading.Event()

    def slow(request, handler):
        release.wait(5)
        return (200, {}, b"late")

    server.answer = slow
    started = time.monotonic()
    try:
        with pytest.raises(OutboundError) as failed:
            post(server.url, read_timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - started < 2
    assert (str(failed.value), failed.value.retryable) == (UNREACHABLE, True)


def test_an_answer_that_drips_is_cut_at_its_deadline(server):
    def drip(request, handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b"z")
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    server.answer = drip
    started = time.monotonic()
    with pytest.raises(OutboundError) as failed:
        post(server.url, connect_timeout=0.2, read_timeout=0.5)
    assert time.monotonic() - started < 3
    assert failed.value.retryable is True


def test_no_proxy_from_the_environment_is_used(server, monkeypatch):
    proxy = LocalHTTP((200, {}, b"from the proxy"))
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert post(server.url).content == b"ok"
        assert (len(server.requests), proxy.requests) == (1, [])
    finally:
        proxy.close()


def test_a_2xx_and_a_4xx_answer_come_back_with_their_status(server):
    assert post(server.url).status_code == 200
    server.answer = (404, {}, b"no such thing")
    answer = post(server.url)
    assert (answer.status_code, answer.text) == (404, "no such thing")
    assert server.requests[-1].headers["accept-encoding"] == "identity"
