"""The buyer's library: a one-time sign-in link by email, and the purchases of that email.

No password and no account: a buyer asks for a link, the link (a signed token naming the email and a
random nonce, valid ``LINK_TTL_SECONDS``) signs the browser in to that email's library by putting the
email in the session. The nonce is marked used in the cache when the link is redeemed, so a link
works once. Whether an email has orders is never revealed: the answer to a request is always the
same, and a link is emailed only when there is something to show.
"""

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.urls import reverse

from marketplace.core.errors import ApplicationError, NotFound
from marketplace.core.ratelimit import retry_after
from orders.emails import build_library_link_email

from .models import Order, OrderItem
from .selectors import orders_with_details

logger = logging.getLogger(__name__)

LINK_SALT = "orders.library.link"
LINK_TTL_SECONDS = 15 * 60
SESSION_KEY = "library_email"
# Link requests per client address and per email: the "library_ip" and "library_email" rate limits.


class LibraryLinkInvalid(ApplicationError):
    status_code = 400
    code = "library_link_invalid"
    default_message = "This sign-in link is not valid. Ask for a new one below."


class LibraryLinkExpired(LibraryLinkInvalid):
    code = "library_link_expired"
    default_message = "This sign-in link has expired. Ask for a new one below; it is on its way in seconds."


class LibraryLinkUsed(LibraryLinkInvalid):
    code = "library_link_used"
    default_message = "This sign-in link was already used. Ask for a new one below."


class LibraryRateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many sign-in links were asked for. Wait a while, then try again."

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


def normalise_email(email: str) -> str:
    return email.strip().lower()


def library_orders(*, email: str) -> QuerySet[Order]:
    """Every order bought with or for this email (as buyer or gift recipient), newest first."""
    email = normalise_email(email)
    return (
        orders_with_details()
        .filter(Q(buyer_email__iexact=email) | Q(recipient_email__iexact=email))
        .order_by("-created_at", "-id")
    )


def library_link_make(*, email: str) -> str:
    token = signing.dumps({"e": normalise_email(email), "n": secrets.token_urlsafe(16)}, salt=LINK_SALT)
    return settings.SITE_URL + reverse("checkout:library-signin", args=[token])


@dataclass
class LinkRequest:
    sent: bool


def library_link_request(*, email: str, ip: str) -> LinkRequest:
    """Emails a one-time sign-in link if the email has purchases. Rate limited per email and per IP;
    otherwise the caller answers the same whatever happened."""
    email = normalise_email(email)
    wait = retry_after([("library_ip", ip), ("library_email", email)])
    if wait is not None:
        raise LibraryRateLimited(retry_after=wait)
    if not library_orders(email=email).exists():
        logger.info("library link asked for an email without orders")
        return LinkRequest(sent=False)
    message = build_library_link_email(email=email, link=library_link_make(email=email), minutes=LINK_TTL_SECONDS // 60)
    message.send(fail_silently=False)
    return LinkRequest(sent=True)


def library_link_check(token: str) -> str:
    """The email a link was made for, without using it up (the page that asks to confirm)."""
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=LINK_TTL_SECONDS)
    except signing.SignatureExpired:
        raise LibraryLinkExpired() from None
    except signing.BadSignature:
        raise LibraryLinkInvalid() from None
    if cache.get(f"library:used:{payload['n']}"):
        raise LibraryLinkUsed()
    return str(payload["e"])


def library_link_redeem(*, token: str, session: Any) -> str:
    """Uses the link up (once, atomically: ``cache.add`` of its nonce) and signs the session in to
    the email's library. A new session key is issued, so a planted session id gains nothing."""
    email = library_link_check(token)
    nonce = signing.loads(token, salt=LINK_SALT, max_age=LINK_TTL_SECONDS)["n"]
    if not cache.add(f"library:used:{nonce}", 1, timeout=LINK_TTL_SECONDS + 60):
        raise LibraryLinkUsed()
    session.cycle_key()
    session[SESSION_KEY] = email
    return email


def library_email(session: Any) -> str | None:
    value = session.get(SESSION_KEY)
    return str(value) if value else None


def library_sign_out(session: Any) -> None:
    session.pop(SESSION_KEY, None)


def library_item_get(*, email: str, item_id: str) -> OrderItem:
    """An item of one of the email's orders; anyone else's is simply not found."""
    email = normalise_email(email)
    item = (
        OrderItem.objects.select_related("order", "product")
        .filter(Q(order__buyer_email__iexact=email) | Q(order__recipient_email__iexact=email), pk=item_id)
        .first()
    )
    if item is None:
        raise NotFound("This purchase is not in your library.", code="item_not_found")
    return item
