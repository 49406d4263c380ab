"""Gifts: the recipient's own e-mail, sent at ``deliver_at`` (by the beat task ``send_due_gifts``)
or at once, carrying the codes or a claim link; the claim; and the seller's and the buyer's actions
on a gift (send now, a new date, resend).

The buyer's receipt is the order's delivery e-mail (``fulfillment``); for a gift it carries no codes.
The claim link's token is a secret: it exists only in the e-mail (``SITE_URL/gift/<token>``); the
order keeps its SHA-256 (``gift_claim_token_hash``), a resend replaces it (the old link stops
working), and it is never logged.
"""

import hashlib
import logging
import secrets
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from marketplace.core.errors import Conflict, Gone, NotFound
from orders.emails import build_gift_email, paid_in_sandbox
from orders.fulfillment import TransientDeliveryError
from orders.lifecycle import order_event_record
from orders.models import Order, OrderEvent, OrderStatus

logger = logging.getLogger(__name__)
S = OrderStatus

# A gift goes out once the order is delivered (its items fulfilled, the buyer's receipt sent), and not
# after a full refund.
_SENDABLE = (S.DELIVERED, S.PARTIALLY_REFUNDED)
DUE_BATCH = 100


def claim_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_claim_token() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits


def gift_is_due(order: Order, *, now: datetime | None = None) -> bool:
    return order.deliver_at is None or order.deliver_at <= (now or timezone.now())


def order_gift_send(
    *, order_id: str, force: bool = False, resend: bool = False, actor: str = "system", now: datetime | None = None
) -> bool:
    """Sends the recipient's gift e-mail of a delivered gift order, once: when it is due (or
    ``force``: the seller's "send now"), or again (``resend``). Returns whether it went out.

    The send is claimed under the order's lock (``gift_sent_at`` set, with the new link's hash) and
    made after the lock is released; a send that fails gives the claim back (the beat task tries
    again) and raises ``TransientDeliveryError``. ``now`` is the time it is due against."""
    now = now or timezone.now()
    token = None
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("product", "seller")
            .annotate(paid_in_sandbox=paid_in_sandbox())
            .filter(pk=order_id)
            .first()
        )
        if order is None or not order.is_gift or order.status not in _SENDABLE or order.email_sent_at is None:
            return False
        if resend != (order.gift_sent_at is not None):
            return False  # sent already (a second run), or a resend of what never went out
        if not (force or resend or gift_is_due(order, now=now)):
            return False
        previous = (order.gift_sent_at, order.gift_claim_token_hash)
        values: dict[str, Any] = {"gift_sent_at": now, "updated_at": now}
        if order.gift_claim_link:
            token = _new_claim_token()
            values["gift_claim_token_hash"] = claim_token_hash(token)
        if force and order.deliver_at and order.deliver_at > now:
            values["deliver_at"] = now
        Order.objects.filter(pk=order.pk).update(**values)
        for name, value in values.items():
            setattr(order, name, value)
    try:
        build_gift_email(order, claim_token=token).send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - any mail failure is worth a retry
        Order.objects.filter(pk=order.pk, gift_sent_at=now).update(
            gift_sent_at=previous[0], gift_claim_token_hash=previous[1]
        )
        order_event_record(order=order, type="gift_email_failed", message=f"Gift e-mail not sent: {exc}"[:500])
        raise TransientDeliveryError(f"Gift e-mail not sent: {exc}") from exc
    kind = "a claim link" if order.gift_claim_link else "the codes"
    order_event_record(
        order=order,
        type="gift_resent" if resend else "gift_sent",
        message=f"Gift e-mail with {kind} {'sent again' if resend else 'sent'} to {order.recipient_email}.",
        actor=actor,
    )
    return True


def gifts_send_due(*, now: datetime | None = None) -> dict[str, int]:
    """The beat task's work: every delivered gift whose time has come and whose e-mail has not gone."""
    now = now or timezone.now()
    due = list(
        Order.objects.filter(
            Q(deliver_at__lte=now) | Q(deliver_at__isnull=True, gift_claim_link=True),
            gift_sent_at__isnull=True,
            email_sent_at__isnull=False,
            status__in=_SENDABLE,
        )
        .exclude(recipient_email="")
        .order_by("deliver_at")
        .values_list("pk", flat=True)[:DUE_BATCH]
    )
    sent = failed = 0
    for order_id in due:
        try:
            sent += order_gift_send(order_id=order_id, now=now)
        except TransientDeliveryError:
            failed += 1
    return {"due": len(due), "sent": sent, "failed": failed}


def order_gift_send_now(*, order: Order, user: Any) -> bool:
    """The seller's "send now": the recipient's e-mail goes out at once (the order must be delivered)."""
    if not order.is_gift:
        raise Conflict("This order is not a gift with a delivery date or a claim link.", code="not_a_gift")
    if order.gift_sent_at is not None:
        raise Conflict("The gift e-mail was sent already.", code="gift_already_sent")
    if order.status not in _SENDABLE:
        raise Conflict("The gift can be sent once the order is delivered.", code="order_not_delivered")
    order_event_record(
        order=order,
        type="gift_send_now",
        message="The seller sent the gift now.",
        actor=OrderEvent.Actor.SELLER,
        actor_user=user,
    )
    return order_gift_send(order_id=order.id, force=True, actor=OrderEvent.Actor.SELLER)


def order_gift_reschedule(*, order: Order, deliver_at: datetime, user: Any) -> Order:
    """The seller's new date for a gift not yet sent (a time already past sends it at the next beat)."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if not locked.is_gift:
            raise Conflict("This order is not a gift with a delivery date or a claim link.", code="not_a_gift")
        if locked.gift_sent_at is not None:
            raise Conflict("The gift e-mail was sent already.", code="gift_already_sent")
        previous = locked.deliver_at
        Order.objects.filter(pk=order.pk).update(deliver_at=deliver_at, updated_at=timezone.now())
        order_event_record(
            order=locked,
            type="gift_rescheduled",
            message=f"Gift delivery moved to {deliver_at.isoformat()}.",
            actor=OrderEvent.Actor.SELLER,
            actor_user=user,
            data={"from": previous.isoformat() if previous else None, "to": deliver_at.isoformat()},
        )
    order.deliver_at = deliver_at
    return order


def order_gift_resend(*, order: Order) -> bool:
    """The buyer's resend of a gift e-mail that went out (a claim link is replaced by a new one)."""
    if not order.is_gift:
        raise Conflict("This order is not a gift with a delivery date or a claim link.", code="not_a_gift")
    if order.gift_sent_at is None:
        raise Conflict("The gift e-mail has not been sent yet.", code="gift_not_sent")
    return order_gift_send(order_id=order.id, resend=True, actor=OrderEvent.Actor.BUYER)


def order_gift_lookup(*, token: str) -> Order | None:
    """The order a claim link belongs to, without claiming it; ``None`` for a link that is not one."""
    if not token or len(token) > 100:
        return None
    return (
        Order.objects.select_related("product", "seller").filter(gift_claim_token_hash=claim_token_hash(token)).first()
    )


def order_gift_claim(*, token: str) -> Order:
    """The recipient opens the claim link: the first opening is recorded (``gift_claimed_at`` and a
    ``gift_claimed`` entry in the timeline); the order comes back for its codes to be shown."""
    if not token or len(token) > 100:
        raise NotFound("This gift link is not valid.", code="gift_not_found")
    digest = claim_token_hash(token)
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(gift_claim_token_hash=digest).first()
        if order is None:
            raise NotFound("This gift link is not valid.", code="gift_not_found")
        if order.access_blocked:
            raise Gone("This gift is no longer available.", code="gift_gone")
        if order.gift_claimed_at is None:
            now = timezone.now()
            Order.objects.filter(pk=order.pk).update(gift_claimed_at=now, updated_at=now)
            order.gift_claimed_at = now
            order_event_record(
                order=order,
                type="gift_claimed",
                message=f"The gift was claimed at {now.isoformat()}.",
                actor=OrderEvent.Actor.BUYER,
                data={"claimed_at": now.isoformat()},
            )
    return Order.objects.select_related("product", "seller").prefetch_related("items").get(pk=order.pk)
