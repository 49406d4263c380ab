"""What a buyer receives by email: the delivery receipt, the library sign-in link, the refund notice.

Each is sent as text with an HTML alternative, rendered from ``templates/emails/``.
"""

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse

from marketplace.core.money import format_money
from payments.models import Payment, PaymentStatus

from .fulfillment import get_strategy
from .models import Order

SANDBOX_NOTICE = (
    "Test order: it was paid through the sandbox gateway, a test gateway where no money moves. "
    "Nobody was charged and nobody will be paid for it."
)


_PAID = (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED)


def paid_in_sandbox() -> Exists:
    """Whether an order was paid through the sandbox, as an annotation (``paid_in_sandbox``) for a
    query that loads orders to e-mail about: ``sandbox_notice`` then needs no query of its own."""
    return Exists(Payment.objects.filter(order_id=OuterRef("pk"), gateway="sandbox", status__in=_PAID))


def sandbox_notice(order: Order) -> str:
    """The plain words every email about a sandbox-paid order carries (empty for any other order):
    a staging or demo site may run the sandbox with production settings (SANDBOX_IN_PRODUCTION), and
    its emails look like real receipts otherwise."""
    known = getattr(order, "paid_in_sandbox", None)
    if known is None:
        known = order.payments.filter(gateway="sandbox", status__in=_PAID).exists()
    return SANDBOX_NOTICE if known else ""


def success_page_url(order: Order) -> str:
    return settings.SITE_URL + reverse("checkout:success", args=[order.product.slug, order.id])


def library_url() -> str:
    return settings.SITE_URL + reverse("checkout:library")


def _message(
    *,
    template: str,
    subject: str,
    context: dict[str, Any],
    to: list[str],
    cc: list[str] | None = None,
    reply_to: list[str] | None = None,
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        cc=cc or None,
        reply_to=reply_to or None,
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    return message


def seller_reply_to(order: Order) -> list[str]:
    """Where a buyer's answer to an email about this order goes: the seller's support email (the
    "Support email" setting), so that replying reaches the seller and not the no-reply sender."""
    support = (getattr(order.seller, "support_email", "") or "").strip()
    return [support] if support else []


def receipt_lines(order: Order) -> dict[str, Any]:
    """The receipt's money, consistent with itself: each line at its price, then the subtotal, the
    discount (with its code) and the total the buyer paid — subtotal − discount = total."""
    return {
        "subtotal": format_money(order.subtotal, order.currency),
        "discount": format_money(order.discount_amount, order.currency) if order.discount_amount else "",
        "discount_code": order.discount_code,
        "total": format_money(order.total_amount, order.currency),
    }


def _buyer_and_recipient(order: Order) -> tuple[list[str], list[str]]:
    """A gift goes to the recipient with the buyer in copy; otherwise to the buyer."""
    recipient = order.recipient_email or order.buyer_email
    cc = [order.buyer_email] if order.recipient_email and order.recipient_email != order.buyer_email else []
    return [recipient], cc


def build_delivery_email(order: Order) -> EmailMultiAlternatives:
    if order.is_gift:
        return build_gift_receipt_email(order)
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
        "library_url": library_url(),
        "sandbox_notice": sandbox_notice(order),
        "support_email": order.seller.support_email,
        "receipt": receipt_lines(order),
    }
    to, cc = _buyer_and_recipient(order)
    return _message(
        template="order_delivered",
        subject=f"Your order #{order.order_number}: {order.product.title}",
        context=context,
        to=to,
        cc=cc,
        reply_to=seller_reply_to(order),
    )


def _gift_context(order: Order) -> dict[str, Any]:
    return {
        "order": order,
        "total": format_money(order.total_amount, order.currency),
        "seller_name": order.seller.name,
        "product_title": order.product.title,
        "deliver_at": order.deliver_at,
        "claim_link": order.gift_claim_link,
        "order_url": success_page_url(order),
        "library_url": library_url(),
        "sandbox_notice": sandbox_notice(order),
    }


def build_gift_receipt_email(order: Order) -> EmailMultiAlternatives:
    """The buyer's receipt for a gift, at once: what was bought and when the recipient gets it, no codes."""
    return _message(
        template="gift_receipt",
        subject=f"Your gift order #{order.order_number}: {order.product.title}",
        context=_gift_context(order),
        to=[order.buyer_email],
    )


def gift_claim_url(token: str) -> str:
    return settings.SITE_URL + reverse("checkout:gift-claim", args=[token])


def build_gift_email(order: Order, *, claim_token: str | None) -> EmailMultiAlternatives:
    """The recipient's gift e-mail: the codes and content, or (``claim_token``) only a link to them."""
    if claim_token is None:
        message = build_delivery_email_for(order, to=[order.recipient_email])
        message.subject = f"A gift for you from {order.seller.name}: {order.product.title}"
        return message
    return _message(
        template="gift_link",
        subject=f"A gift for you from {order.seller.name}: {order.product.title}",
        context={**_gift_context(order), "claim_url": gift_claim_url(claim_token)},
        to=[order.recipient_email],
    )


def build_delivery_email_for(order: Order, *, to: list[str]) -> EmailMultiAlternatives:
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
        "library_url": library_url(),
        "sandbox_notice": sandbox_notice(order),
    }
    return _message(
        template="order_delivered",
        subject=f"Your order #{order.order_number}: {order.product.title}",
        context=context,
        to=to,
    )


def build_library_link_email(*, email: str, link: str, minutes: int) -> EmailMultiAlternatives:
    return _message(
        template="library_link",
        subject="Your sign-in link for your purchases",
        context={"email": email, "link": link, "minutes": minutes, "library_url": library_url()},
        to=[email],
    )


def build_refund_email(order: Order, refund: Any) -> EmailMultiAlternatives:
    full = order.refunded_amount >= order.total_amount
    context = {
        "order": order,
        "seller_name": order.seller.name,
        "amount": format_money(refund.amount, order.currency),
        "total": format_money(order.total_amount, order.currency),
        "refunded_total": format_money(order.refunded_amount, order.currency),
        "full": full,
        "reason": getattr(refund, "reason", ""),
        "order_url": success_page_url(order),
        "library_url": library_url(),
        "sandbox_notice": sandbox_notice(order),
        "support_email": order.seller.support_email,
    }
    to, cc = _buyer_and_recipient(order)
    if order.recipient_email and order.recipient_email != order.buyer_email:
        # The money goes back to the buyer: they get the notice; the recipient only learns that a
        # gift's codes or downloads stopped working if it was refunded in full.
        to, cc = [order.buyer_email], ([order.recipient_email] if full else [])
    return _message(
        template="refund",
        subject=f"Refund for order #{order.order_number}: {order.product.title}",
        context=context,
        to=to,
        cc=cc,
        reply_to=seller_reply_to(order),
    )


def send_refund_email(order: Order, refund: Any) -> None:
    """Tells the buyer about a refund that succeeded (call it after the refund is applied, e.g. from
    ``transaction.on_commit`` in ``order_apply_refund``). Raises if the mail server refuses."""
    order.refresh_from_db(fields=["refunded_amount", "status"])
    build_refund_email(order, refund).send(fail_silently=False)
