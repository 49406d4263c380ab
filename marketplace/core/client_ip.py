"""Who is asking: the one function that names a client's address, for every rate limit (the API's
throttles and the pages'), the sign-in lock-out (django-axes) and the request log line.

``REMOTE_ADDR`` is the peer that opened the connection: the only address a client cannot choose.
``X-Forwarded-For`` is whatever the sender wrote, so it is read only when ``TRUSTED_PROXY_COUNT``
says how many proxies of ours stand in front of the app. Each of them appends the address it saw,
so the entry that many places from the right is the one our outermost proxy saw; anything to its
left came from the client and is never believed. A header with fewer entries than that, or whose
entry is not an IP address, did not come through the proxies as configured: then ``REMOTE_ADDR``.

With a count of 0 (the default) the header is ignored altogether, so a client that sends a new
``X-Forwarded-For`` with every request is still one client to every limit, and cannot make its
failed sign-ins count against somebody else's address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def trusted_proxy_count() -> int:
    """``TRUSTED_PROXY_COUNT``: how many reverse proxies of ours append to ``X-Forwarded-For``."""
    return max(0, int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0))


def _address(value: object) -> str | None:
    """``value`` as a canonical IP address (``2001:DB8::1`` and ``2001:db8:0::1`` are one), else None."""
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: Any) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or behind ``TRUSTED_PROXY_COUNT`` proxies the address
    the outermost of them saw in ``X-Forwarded-For``. None when the request carries none (a sign-in
    made in code, not over HTTP)."""
    meta = getattr(request, "META", None) or {}
    remote = meta.get("REMOTE_ADDR") or None
    count = trusted_proxy_count()
    if count:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR")
        if isinstance(forwarded, str):
            hops = forwarded.split(",")
            if len(hops) >= count:
                seen = _address(hops[-count])
                if seen is not None:
                    return seen
    return _address(remote) or remote
