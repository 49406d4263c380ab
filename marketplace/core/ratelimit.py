"""Rate limits for pages, and the answer to a sign-in lock-out.

One mechanism for the API and the pages: DRF's cache-backed throttles, with the scopes and rates of
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``. API views name a scope (``throttle_scope``) and use
:class:`ClientRateThrottle`; pages use :func:`throttle_page`. Both answer 429 with ``Retry-After``: the
API in its error envelope, pages with a page that says how long to wait. Both count per client address
as :func:`~marketplace.core.client_ip.client_address` names it, never as DRF's own ``get_ident`` would.

Repeated failed sign-ins are counted by django-axes (per email and client address, see
``AXES_*`` in settings); :func:`lockout_response` is what a locked-out client gets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, cast

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from .api import error_body
from .client_ip import client_address

__all__ = ["ClientRateThrottle", "PageRateThrottle", "client_address", "retry_after", "throttle_page"]

View = Callable[..., HttpResponse]


class ClientAddressIdent:
    """A throttle's identity of the client: :func:`client_address`. DRF's own ``get_ident`` trusts
    a client's ``X-Forwarded-For`` unless ``NUM_PROXIES`` is set, so no throttle here uses it."""

    def get_ident(self, request: Any) -> str:
        return client_address(request) or "-"


class FixedWindowThrottle(SimpleRateThrottle):
    """DRF's rate (``30/minute``) counted in fixed windows: one counter per client and window.

    DRF's own ``SimpleRateThrottle`` keeps every request of the window in one pickled list that each
    request reads and writes back (two round trips, and thousands of entries at checkout rates).
    Here a request is one ``INCR`` of the window's counter with its ``EXPIRE``, pipelined: one round
    trip to Redis, nothing to unpickle. Other caches (the embedded default) get ``add`` then
    ``incr``. The price of a fixed window: a client may spend the limit at the end of one window and
    again at the start of the next.
    """

    num_requests: int  # set from the rate by DRF's ``__init__`` / ``ScopedRateThrottle.allow_request``
    duration: int
    window_ends: float

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        return window_hit(f"{self.key}:{window}", timeout=self.duration) <= self.num_requests

    def wait(self) -> float | None:
        """Seconds until the window ends, when its counter starts again."""
        return max(self.window_ends - self.timer(), 0.001)


def window_hit(key: str, *, timeout: int) -> int:
    """Counts one hit on ``key`` (a window's counter, gone ``timeout`` seconds after its last hit)
    and answers the count so far."""
    cache = caches[DEFAULT_CACHE_ALIAS]  # the backend itself, not the proxy, so that Redis is recognised
    if isinstance(cache, RedisCache):
        raw_key = cache.make_and_validate_key(key)
        pipeline = cast(Any, cache)._cache.get_client(raw_key, write=True).pipeline(transaction=False)
        pipeline.incr(raw_key)
        pipeline.expire(raw_key, timeout)
        count, _ = pipeline.execute()
        return int(count)
    cache.add(key, 0, timeout)
    try:
        return int(cache.incr(key))
    except ValueError:  # it expired between the two calls: this is the first hit of a new counter
        cache.add(key, 1, timeout)
        return 1


class ClientRateThrottle(ClientAddressIdent, ScopedRateThrottle, FixedWindowThrottle):
    """DRF's scoped throttle (``throttle_scope`` on the view), per client address, counted in fixed
    windows: every API view's."""


class PageRateThrottle(ClientAddressIdent, FixedWindowThrottle):
    """A scoped throttle usable outside DRF views: per client address, or per ``ident`` when given
    (an email, say)."""

    def __init__(self, scope: str, ident: str | None = None) -> None:
        self.scope = scope
        self.ident = ident
        self.THROTTLE_RATES = ScopedRateThrottle.THROTTLE_RATES  # one table for the API and the pages
        super().__init__()

    def get_cache_key(self, request: Any, view: Any) -> str:
        ident = self.ident if self.ident is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def retry_after(limits: Iterable[tuple[str, str]]) -> int | None:
    """Counts one request against each ``(scope, ident)`` in turn; the seconds to wait at the first
    that is used up (the ones after it are not counted), or None when all allow it."""
    for scope, ident in limits:
        throttle = PageRateThrottle(scope, ident=ident)
        if not throttle.allow_request(cast(Request, None), cast(APIView, None)):
            return _seconds(throttle.wait())
    return None


def _seconds(wait: float | None) -> int:
    return max(1, math.ceil(wait or 1))


def rate_limited_page(request: HttpRequest, seconds: int) -> HttpResponse:
    response = render(request, "errors/rate_limited.html", {"retry_after": seconds}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def throttle_page(scope: str, methods: Iterable[str] = ("POST",)) -> Callable[[View], View]:
    """Counts ``methods`` requests to a page against ``scope``; past the rate, a 429 page."""
    counted = frozenset(m.upper() for m in methods)

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in counted:
                throttle = PageRateThrottle(scope)
                # DRF's throttles only read the client's address from the request (request.META).
                if not throttle.allow_request(cast(Request, request), cast(APIView, None)):
                    return rate_limited_page(request, _seconds(throttle.wait()))
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


# --- Sign-in lock-out (django-axes) ------------------------------------------------------------------


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The email a sign-in attempt was for, normalised so ``A@x.com`` and ``a@x.com`` count together."""
    value: Any = None
    for source in (credentials or {}, getattr(request, "POST", {}) or {}):
        value = source.get("email") or source.get("username")
        if value:
            break
    return str(value or "").strip().lower()


def lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """429 with ``Retry-After``: the API's error envelope under ``/api/``, a page elsewhere."""
    seconds = lockout_seconds()
    minutes = max(1, seconds // 60)
    message = f"Too many failed sign-in attempts. Try again in {minutes} minutes, or reset your password."
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body("account_locked", message), status=429)
    else:
        response = render(request, "errors/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(seconds)
    return response
