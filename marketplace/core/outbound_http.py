"""The one door to the outside: every HTTP request the server makes on a seller's behalf.

Why: a seller chooses the URLs we call (a partner fulfillment URL, webhook endpoints, an order's
``webhook_urls``). Left alone, such a URL points the server at itself, at the private network or at
the cloud's metadata service (SSRF), and the answer comes back to the attacker as a delivered code,
a stored response or an error text that tells which ports are open. So every such call goes through
``outbound_post`` and every such URL is checked with ``outbound_url_check`` when it is saved:

- Only ``https://`` (``http://`` where the caller's policy allows it), no user name or password.
- The host is resolved once per connection, and the socket connects to an address of that answer,
  never to a second lookup (DNS rebinding). TLS still sends the host name (SNI) and checks the
  certificate against it. If *any* address of the answer is refused, nothing is sent.
- Refused: loopback, private, link-local (169.254/16 and fe80::/10: the cloud metadata services),
  multicast, reserved, unspecified, carrier-grade NAT (100.64/10), site-local, documentation and
  benchmarking ranges, and the IPv6 forms that carry an IPv4 address or reach one through a gateway:
  IPv4-mapped (``::ffff:0:0/96``, judged by the address it carries), IPv4-compatible, 6to4
  (``2002::/16``), NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``) and Teredo (``2001::/32``).
- Redirects are never followed: a 3xx is a failure for the caller.
- A connect timeout, a read timeout, and a deadline for the whole answer; the answer is read as a
  stream and never beyond a cap. No proxy from the environment.
- Every failure reads the same to the seller (``UNREACHABLE``): it never says whether a port is
  open, what the name resolved to or why. The reason is logged at INFO for operators (the host,
  never the path, the query or the body, which may carry secrets).

``private_urls_allowed()`` (``WEBHOOK_ALLOW_PRIVATE_URLS``, development and tests only; production
refuses to start with it) lifts the address rules, so that local receivers and the demo partner work.

The kernel's module: it knows nothing of orders or products (only Django, requests and the stdlib).
"""

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

logger = logging.getLogger(__name__)

# The one text a seller sees for any call that could not be made or completed.
UNREACHABLE = "The URL could not be reached."
INVALID_URL = "Must be a valid https:// URL."
CREDENTIALS_IN_URL = "Must not carry a user name or password."

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
_CHUNK = 8 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Written out rather than left to ``is_global`` alone, whose tables differ between Python versions
# (3.11 counts 224.0.0.0/4, 64:ff9b::/96 and fec0::/10 as global).
_REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/96",  # unspecified, loopback, IPv4-compatible
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local use
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: reaches whatever IPv4 address it carries
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)


class OutboundError(Exception):
    """A URL we will not call, or a call that could not be made or completed.

    ``str()`` is always ``UNREACHABLE``: what the seller sees when a call fails. ``detail`` is what a
    form shows when the URL is saved (``UNREACHABLE`` too, except for a malformed URL, whose problem
    the seller can see for themselves). ``reason`` is for the operators' log only. ``retryable``:
    whether trying again later may succeed (an outage), or not (a refused address, a redirect)."""

    def __init__(self, reason: str, *, retryable: bool = False, detail: str = UNREACHABLE) -> None:
        super().__init__(UNREACHABLE)
        self.reason = reason
        self.retryable = retryable
        self.detail = detail


@dataclass(frozen=True)
class OutboundPolicy:
    """What a caller may reach: ``http://`` besides ``https://``, and private addresses."""

    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    content: bytes
    truncated: bool = False  # the answer was longer than the cap and only its start was kept

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def private_urls_allowed() -> bool:
    """The one switch that lets development and tests reach local receivers (loopback, private
    networks) and the demo partner. Named for its first user; production refuses to start with it."""
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_URLS)


def configured_host_policy() -> OutboundPolicy:
    """The policy for calls to a host the operators configured (a payment gateway's API base URL),
    not one a seller chose: the same guard, ``https://`` to public addresses only; where
    ``private_urls_allowed()`` (development and tests) also ``http://`` and local addresses, so that
    a gateway's local fake can answer."""
    local = private_urls_allowed()
    return OutboundPolicy(allow_http=local, allow_private=local)


# --- Addresses ---------------------------------------------------------------------------------


def address_is_refused(ip: IPAddress) -> bool:
    """Whether we never connect to ``ip`` on a seller's behalf (see the module's docstring)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_is_refused(ip.ipv4_mapped)  # ::ffff:a.b.c.d is a.b.c.d
    if any(ip in network for network in _REFUSED_NETWORKS if network.version == ip.version):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return True
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve_public(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, or ``OutboundError`` when it
    does not resolve or when any one of them is refused (one bad record spoils the answer)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutboundError(f"{host} does not resolve ({exc})", retryable=True) from None
    addresses: list[str] = []
    for info in infos:
        raw = str(info[4][0])
        try:
            ip = ipaddress.ip_address(raw.split("%", 1)[0])
        except ValueError:
            raise OutboundError(f"{host} resolves to {raw!r}, not an IP address") from None
        if address_is_refused(ip):
            raise OutboundError(f"{host} resolves to {ip}, a refused address")
        if raw not in addresses:
            addresses.append(raw)
    if not addresses:
        raise OutboundError(f"{host} has no address", retryable=True)
    return addresses


# --- URLs --------------------------------------------------------------------------------------


def _parse(url: str, policy: OutboundPolicy) -> SplitResult:
    """The URL's parts if its form is one we call, else ``OutboundError`` with a precise ``detail``."""
    schemes = ["https", "http"] if policy.allow_http else ["https"]
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise OutboundError("malformed URL", detail=INVALID_URL)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundError("malformed URL", detail=INVALID_URL) from None
    if parts.username is not None or parts.password is not None:
        raise OutboundError("URL with credentials", detail=CREDENTIALS_IN_URL)
    try:
        URLValidator(schemes=schemes)(url)
    except ValidationError:
        raise OutboundError(f"malformed URL or scheme {parts.scheme!r} not allowed", detail=INVALID_URL) from None
    if parts.scheme not in schemes or not parts.hostname or port == 0:
        raise OutboundError("malformed URL", detail=INVALID_URL)
    return parts


def _default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def outbound_url_check(url: str, *, policy: OutboundPolicy) -> None:
    """Raises ``OutboundError`` unless we may call ``url``: when a seller saves it. The call itself
    checks again (names resolve differently over time), so this is a courtesy, not the guard."""
    try:
        parts = _parse(url, policy)
        if not policy.allow_private:
            resolve_public(str(parts.hostname), _default_port(parts))
    except OutboundError as exc:
        _log_refusal(url, exc, when="saved")
        raise


# --- The connection: resolve once, check, connect to the checked address -------------------------


class _PinnedConnectionMixin:
    """Resolves the host once when connecting, refuses the whole answer if any address is refused,
    and opens the socket to a checked address. ``host`` stays the name, so the Host header, SNI and
    the certificate check all use it; only the socket's destination is pinned."""

    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        last: Exception | None = None
        for address in resolve_public(name.strip("[]"), self.port):
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[misc,no-any-return]
            except (NewConnectionError, ConnectTimeoutError) as exc:
                last = exc  # the next checked address of the same answer, if any
            finally:
                self._dns_host = name
        assert last is not None  # noqa: S101 - resolve_public returns at least one address
        raise last


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}


def _session(policy: OutboundPolicy) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: it would connect on our behalf
    adapter = HTTPAdapter(max_retries=0) if policy.allow_private else _PinnedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- The call ----------------------------------------------------------------------------------


def outbound_post(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: OutboundPolicy,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    max_bytes: int = MAX_RESPONSE_BYTES,
    truncate: bool = False,
) -> OutboundResponse:
    """POSTs ``body`` to ``url`` under ``policy`` and returns the status and at most ``max_bytes``
    of the answer. A longer answer is cut there when ``truncate`` (a webhook receiver's answer is
    only kept for the seller to read), else it is a failure (a partner's answer must be whole).
    Raises ``OutboundError`` for a refused URL or address, a failed connection, a timeout, a
    redirect or an oversized answer."""
    return _send(
        "POST",
        url=url,
        body=body,
        headers=headers,
        policy=policy,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_bytes=max_bytes,
        truncate=truncate,
    )


def outbound_get(
    *,
    url: str,
    headers: dict[str, str],
    policy: OutboundPolicy,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> OutboundResponse:
    """GETs ``url`` under ``policy``, with ``outbound_post``'s guards (an API that takes its
    parameters in the query string, e.g. a gateway's status look-up). Its query never reaches a log."""
    return _send(
        "GET",
        url=url,
        body=None,
        headers=headers,
        policy=policy,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_bytes=max_bytes,
        truncate=False,
    )


def _send(
    method: str,
    *,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    policy: OutboundPolicy,
    connect_timeout: float,
    read_timeout: float,
    max_bytes: int,
    truncate: bool,
) -> OutboundResponse:
    started = time.monotonic()
    deadline = started + connect_timeout + read_timeout
    try:
        _parse(url, policy)
        with _session(policy) as session:
            try:
                response = session.request(
                    method,
                    url,
                    data=body,
                    headers={**headers, "Accept-Encoding": "identity"},
                    timeout=(connect_timeout, read_timeout),
                    allow_redirects=False,
                    stream=True,
                )
            except requests.Timeout as exc:
                raise OutboundError(f"timed out ({type(exc).__name__})", retryable=True) from None
            except (requests.RequestException, HTTPError, ValueError) as exc:
                raise OutboundError(f"no answer ({_kind(exc)})", retryable=True) from None
            try:
                return _read(response, max_bytes=max_bytes, truncate=truncate, deadline=deadline)
            finally:
                response.close()
    except OutboundError as exc:
        _log_refusal(url, exc, when="called")
        raise


def _read(response: requests.Response, *, max_bytes: int, truncate: bool, deadline: float) -> OutboundResponse:
    status = response.status_code
    if 300 <= status < 400:
        raise OutboundError(f"answered {status}; redirects are not followed")
    declared = response.headers.get("Content-Length", "")
    if not truncate and declared.isdigit() and int(declared) > max_bytes:
        raise OutboundError(f"answer of {declared} bytes is over the {max_bytes}-byte cap")
    content = bytearray()
    try:
        while len(content) <= max_bytes:
            chunk = response.raw.read1(min(_CHUNK, max_bytes + 1 - len(content)), decode_content=True)
            if not chunk:
                break
            content += chunk
            if time.monotonic() > deadline:
                raise OutboundError("the answer took longer than its deadline", retryable=True)
    except OutboundError:
        raise
    except (requests.RequestException, HTTPError, OSError, ValueError) as exc:
        if not truncate:
            raise OutboundError(f"broken answer ({_kind(exc)})", retryable=True) from None
        # A receiver's status code stands even if the rest of its answer breaks off.
    if len(content) > max_bytes:
        if not truncate:
            raise OutboundError(f"answer over the {max_bytes}-byte cap")
        return OutboundResponse(status, bytes(content[:max_bytes]), truncated=True)
    return OutboundResponse(status, bytes(content))


def _kind(exc: Exception) -> str:
    """The kind of failure, for the log: exception types only (their texts repeat the URL's path
    and query, which may carry a seller's token)."""
    inner = exc.args[0] if exc.args else None
    cause = getattr(inner, "reason", None)  # urllib3's MaxRetryError carries the real cause
    return type(exc).__name__ + (f"/{type(cause).__name__}" if isinstance(cause, Exception) else "")


def _log_refusal(url: str, exc: OutboundError, *, when: str) -> None:
    try:
        parts = urlsplit(url)
        target = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")
    except ValueError:
        target = "(malformed URL)"
    logger.info("Outbound URL refused or failed when %s: %s: %s", when, target, exc.reason)
