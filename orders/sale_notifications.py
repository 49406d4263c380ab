"""The seller's "you made a sale" email: sent once per paid order, unless the seller turned it off
(``User.notify_on_sale``, on by default). Queued by the move to paid (``lifecycle``); idempotent:
a ``sale_notified`` entry in the order's timeline says it went, so a task run twice sends once."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from marketplace.core.money import format_money

from .emails import sandbox_notice
from .lifecycle import order_event_record
from .models import Order, OrderEvent

logger = logging.getLogger(__name__)
NOTIFIED = "sale_notified"
KIND_HEADER = "X-Marketplace-Email"  # tells mail filters (and tests) a seller's sale email apart


def is_sale_notification(message: EmailMultiAlternatives) -> bool:
    return message.extra_headers.get(KIND_HEADER) == "sale-notification"


def build_sale_notification_email(order: Order) -> EmailMultiAlternatives:
    items = [
        {
            "label": f"{item.title} / {item.variant_name}" if item.variant_name else item.title,
            "quantity": item.quantity,
            "line_total": format_money(item.line_total, order.currency),
        }
        for item in order.items.all()
    ]
    context = {
        "order": order,
        "items": items,
        "total": format_money(order.total_amount, order.currency),
        "earnings": format_money(order.seller_earnings, order.currency),
        "order_url": settings.SITE_URL + reverse("dashboard-order", args=[order.order_number]),
        "settings_url": settings.SITE_URL + reverse("dashboard-settings"),
        "sandbox_notice": sandbox_notice(order),
    }
    message = EmailMultiAlternatives(
        subject=f"New sale: {order.product.title} ({context['total']}) — order #{order.order_number}",
        body=render_to_string("emails/sale_notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.seller.email],
        headers={KIND_HEADER: "sale-notification"},
    )
    message.attach_alternative(render_to_string("emails/sale_notification.html", context), "text/html")
    return message


def sale_notification_send(*, order_id: str) -> str:
    """Sends the email if the seller wants it and it has not gone yet. Returns ``sent``, ``off``
    (the seller turned it off), ``already`` or ``missing``.

    Claimed under the order's lock (a ``sale_notified`` entry), sent after that lock is released —
    never under it — and the claim is given back if the mail server refuses, so that the task's
    retry sends it (raised again for that)."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("seller", "product")
            .filter(pk=order_id)
            .first()
        )
        if order is None or order.paid_at is None:
            return "missing"
        if not order.seller.notify_on_sale:
            return "off"
        if OrderEvent.objects.filter(order=order, type=NOTIFIED).exists():
            return "already"
        claim = order_event_record(
            order=order,
            type=NOTIFIED,
            message="The seller was emailed about this sale.",
            data={"to": "seller"},
        )
    try:
        build_sale_notification_email(order).send(fail_silently=False)
    except Exception:
        OrderEvent.objects.filter(pk=claim.pk).delete()
        logger.warning("The sale notification of order %s was refused; it will be retried.", order.order_number)
        raise
    return "sent"
