"""The one email a buyer gets per order, with everything they bought."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from marketplace.core.money import format_money

from .fulfillment import get_strategy
from .models import Order


def success_page_url(order: Order) -> str:
    return settings.SITE_URL + reverse("checkout:success", args=[order.product.slug, order.id])


def build_delivery_email(order: Order) -> EmailMultiAlternatives:
    items = []
    for item in order.items.all():
        delivery = get_strategy(item.content_type).delivery_view(item)
        items.append({"item": item, "delivery": delivery, "line_total": format_money(item.line_total, order.currency)})
    context = {
        "order": order,
        "items": items,
        "total": format_money(order.total_amount, order.currency),
        "seller_name": order.seller.name,
        "order_url": success_page_url(order),
    }
    subject = f"Your order #{order.order_number}: {order.product.title}"
    recipient = order.recipient_email or order.buyer_email
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/order_delivered.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        cc=[order.buyer_email] if order.recipient_email and order.recipient_email != order.buyer_email else None,
    )
    message.attach_alternative(render_to_string("emails/order_delivered.html", context), "text/html")
    return message
