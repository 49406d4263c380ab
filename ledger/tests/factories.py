"""Orders paid and refunded through the real order services, so the ledger is written as in production."""

from typing import Any

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order
from orders.services import CheckoutLine, order_create, order_mark_paid
from orders.services.refunds import order_apply_refund
from payments.models import Payment, PaymentStatus, Refund


def product_for(seller: Any, *, currency: str = "USD", price: int = 1999) -> Any:
    product = ProductFactory(seller=seller, currency=currency)
    VariantFactory(product=product, price=price)
    return product


def order_paid(product: Any, *, quantity: int = 1) -> Order:
    order = order_create(
        product=product, buyer_email="buyer@example.com", lines=[CheckoutLine(product.variants.first().id, quantity)]
    ).order
    payment = Payment.objects.create(
        order=order,
        gateway="sandbox",
        status=PaymentStatus.SUCCEEDED,
        amount=order.total_amount,
        currency=order.currency,
    )
    return order_mark_paid(order_id=order.id, payment_id=payment.id)


def order_refunded(order: Order, amount: int, *, reason: str = "") -> tuple[Order, Refund]:
    payment = Payment.objects.filter(order=order).first()
    refund = Refund.objects.create(
        order=order,
        seller_id=order.seller_id,
        payment=payment,
        amount=amount,
        currency=order.currency,
        reason=reason,
        status=Refund.Status.SUCCEEDED,
    )
    return order_apply_refund(order_id=order.id, refund=refund, user=None, actor="seller"), refund
