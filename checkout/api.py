"""The public checkout over HTTP: the product's public view, quote, pay, the buyer's order and
payment initiation. Thin views over ``checkout.services`` and the orders selectors."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.covers import cover_image_url
from catalog.rendering import markdown_to_safe_html
from catalog.selectors import variant_stock
from catalog.serializers import absolute_url
from marketplace.accounts.models import APIKey
from marketplace.core.errors import DependencyUnavailable, ValidationFailed
from marketplace.core.ratelimit import ClientRateThrottle, client_address
from orders.api import OrderListApi, PublicApi
from orders.emails import success_page_url
from orders.fulfillment import TransientDeliveryError
from orders.models import OrderStatus
from orders.presenters import order_to_dict, payment_to_dict
from orders.pricing import checkout_quote, checkout_stock_check
from orders.schema import CheckoutOrderDoc, OrderDoc, PaymentRedirectDoc, PublicProductDoc, QuoteDoc
from orders.selectors import order_get_for_buyer
from orders.serializers import InitiateInput, OrderCreateInput, PayInput, QuoteInput
from orders.services.gifts import order_gift_resend
from payments.services import payment_open, payment_reconcile_throttled

from .services import checkout_gateway, checkout_lines, checkout_order_for_caller, checkout_pay, product_for_checkout


class CheckoutProductApi(PublicApi):
    @extend_schema(responses=PublicProductDoc)
    def get(self, request: Request, slug: str) -> Response:
        product = product_for_checkout(slug)
        stock = variant_stock(product)
        return Response(
            {
                "slug": product.slug,
                "title": product.title,
                "description": product.description,
                "description_html": markdown_to_safe_html(product.description),
                "cover_image_url": absolute_url(cover_image_url(product.cover_image_path)),
                "seller_name": product.seller.name,
                "seller_slug": product.seller.store_slug or "",
                "support_email": product.seller.support_email or product.seller.email,
                "currency": product.currency,
                "content_type": product.delivery_type,
                "variants": [
                    {
                        "id": v.id,
                        "name": v.name,
                        "price": v.price,
                        "available": stock[v.id] is None or (stock[v.id] or 0) > 0,
                        "stock": stock[v.id],
                    }
                    for v in product.variants.all()
                ],
            }
        )


class CheckoutQuoteApi(PublicApi):
    @extend_schema(request=QuoteInput, responses=QuoteDoc)
    def post(self, request: Request, slug: str) -> Response:
        product = product_for_checkout(slug)
        data = QuoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        quote = checkout_quote(
            product=product,
            lines=checkout_lines(product, data.validated_data["items"]),
            discount_code=data.validated_data["discount_code"],
        )
        checkout_stock_check(quote=quote)
        return Response(quote.as_dict())


def _idempotency_key(request: Request, body_key: str | None) -> str | None:
    """The body's ``idempotency_key`` or the ``Idempotency-Key`` header (both: they must agree)."""
    header_key = request.headers.get("Idempotency-Key", "").strip() or None
    if header_key and body_key and header_key != body_key:
        raise ValidationFailed(
            "The Idempotency-Key header and idempotency_key differ.",
            fields={"idempotency_key": ["Does not match the Idempotency-Key header."]},
        )
    key = body_key or header_key
    if key and len(key) > 200:
        raise ValidationFailed(fields={"idempotency_key": ["At most 200 characters."]})
    return key


class CheckoutPayApi(PublicApi):
    throttle_scope = "pay"

    @extend_schema(
        request=PayInput,
        responses={201: CheckoutOrderDoc, 200: CheckoutOrderDoc},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def post(self, request: Request, slug: str) -> Response:
        product = product_for_checkout(slug)
        data = PayInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        key = _idempotency_key(request, data.validated_data.get("idempotency_key"))
        order, payment, created = checkout_pay(
            buyer=request.user,
            product=product,
            validated=data.validated_data,
            idempotency_key=key,
            client_ip=client_address(request),
        )
        if not created:  # a replay answers the order as it is now; a new one is in hand, complete
            order = order_get_for_buyer(order_id=order.id)
        body = order_to_dict(order, audience="buyer")
        if payment is not None:
            body["payment"] = {**payment_to_dict(payment), "redirect_url": payment.redirect_url}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CheckoutOrderApi(PublicApi):
    throttle_scope = "polling"

    @extend_schema(responses=OrderDoc)
    def get(self, request: Request, slug: str, order_id: str) -> Response:
        order = order_get_for_buyer(order_id=order_id, slug=slug)
        if order.status == OrderStatus.PENDING:
            payment_reconcile_throttled(order=order)
            order = order_get_for_buyer(order_id=order_id, slug=slug)
        return Response(order_to_dict(order, audience="buyer"))


class PaymentInitiateApi(APIView):
    """A payment for an order created with ``init_payment: false``, or a new attempt after a failure.
    201 with the payment it opened; 200 with the order's open payment when it already has one."""

    permission_classes = [AllowAny]
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "pay"

    @extend_schema(request=InitiateInput, responses={201: PaymentRedirectDoc, 200: PaymentRedirectDoc})
    def post(self, request: Request, order_id: str) -> Response:
        order = order_get_for_buyer(order_id=order_id)
        data = InitiateInput(data=request.data)
        data.is_valid(raise_exception=True)
        checkout_gateway(data.validated_data["payment_method"] or None, currency=order.currency)
        return_url = success_page_url(order)
        opened = payment_open(
            order=order, gateway_name=data.validated_data["payment_method"] or None, return_url=return_url
        )
        return Response(
            {**payment_to_dict(opened.payment), "redirect_url": opened.payment.redirect_url},
            status=status.HTTP_201_CREATED if opened.created else status.HTTP_200_OK,
        )


class OrderCollectionApi(OrderListApi):
    """``GET /api/v1/orders`` (the list, ``orders.api``) and ``POST /api/v1/orders``: an order from
    an integration, made by the checkout's own services (``checkout_order_for_caller``)."""

    throttle_classes = [ClientRateThrottle]
    throttle_scope = "pay"

    def get_throttles(self) -> list[Any]:
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateInput,
        responses={201: CheckoutOrderDoc, 200: CheckoutOrderDoc},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        description=(
            "An order from an integration: items from one or more of one seller's active products in one "
            "currency. A buyer's JWT or API key orders for the account (no `buyer_email`); a seller's own "
            "credentials order its own products for a customer (`buyer_email`), and with `payment_method: "
            '"external"` and a `payment_reference` the order is created paid and fulfilled at once. '
            "Idempotent as `pay`, with keys in the caller's own key space."
        ),
    )
    def post(self, request: Request) -> Response:
        data = OrderCreateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        key = _idempotency_key(request, data.validated_data.get("idempotency_key"))
        api_key_id = request.auth.id if isinstance(request.auth, APIKey) else None
        order, payment, created = checkout_order_for_caller(
            caller=request.user, api_key_id=api_key_id, validated=data.validated_data, idempotency_key=key
        )
        if getattr(request.user, "is_seller", False):
            body = self.order_view(request, order.id)  # a seller's read of codes is recorded, as on GET
        else:
            body = order_to_dict(order_get_for_buyer(order_id=order.id), audience="buyer")
        if payment is not None:
            body["payment"] = {**payment_to_dict(payment), "redirect_url": payment.redirect_url}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CheckoutGiftResendApi(PublicApi):
    """The buyer's resend of a gift's e-mail to its recipient (a claim link is replaced by a new one)."""

    throttle_scope = "pay"

    @extend_schema(request=None, responses=OrderDoc)
    def post(self, request: Request, slug: str, order_id: str) -> Response:
        order = order_get_for_buyer(order_id=order_id, slug=slug)
        try:
            order_gift_resend(order=order)
        except TransientDeliveryError:
            raise DependencyUnavailable("The gift e-mail could not be sent; try again in a moment.") from None
        return Response(order_to_dict(order_get_for_buyer(order_id=order_id, slug=slug), audience="buyer"))
