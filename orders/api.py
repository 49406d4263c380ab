"""Orders over HTTP: the public checkout, the buyer's resource, and the seller's orders."""

from typing import Any

from django.http import HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from marketplace.core.api import Pagination
from marketplace.core.errors import ApplicationError, Gone, NotFound, ValidationFailed
from marketplace.core.permissions import IsSeller, request_seller

from .filters import OrderFilter
from .fulfillment import get_strategy
from .models import OrderStatus
from .presenters import order_summary_to_dict, order_to_dict, payment_to_dict
from .schema import CheckoutOrderDoc, OrderDoc, PublicProductDoc, QuoteDoc, ResourceDoc
from .selectors import order_get_for_buyer, order_get_for_seller, orders_with_details
from .serializers import DeliveryOverrideInput, PayInput, QuoteInput, RefundInput, StatusInput
from .services import (
    checkout_lines,
    checkout_pay,
    checkout_quote,
    checkout_stock_check,
    order_item_override_delivery,
    order_retry_delivery,
    order_set_status,
    product_for_checkout,
    variant_stock,
)


class PublicApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "checkout"


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
                "seller_name": product.seller.name,
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


class CheckoutPayApi(PublicApi):
    throttle_scope = "pay"

    @extend_schema(
        request=PayInput,
        responses={201: CheckoutOrderDoc, 200: CheckoutOrderDoc},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
    def post(self, request: Request, slug: str) -> Response:
        product = product_for_checkout(slug)
        data = PayInput(data=request.data)
        data.is_valid(raise_exception=True)
        header_key = request.headers.get("Idempotency-Key", "").strip() or None
        body_key = data.validated_data.get("idempotency_key")
        if header_key and body_key and header_key != body_key:
            raise ValidationFailed(
                "The Idempotency-Key header and idempotency_key differ.",
                fields={"idempotency_key": ["Does not match the Idempotency-Key header."]},
            )
        key = body_key or header_key
        if key and len(key) > 200:
            raise ValidationFailed(fields={"idempotency_key": ["At most 200 characters."]})
        order, payment, created = checkout_pay(
            buyer=request.user, product=product, validated=data.validated_data, idempotency_key=key
        )
        order = order_get_for_buyer(order_id=order.id)
        body = order_to_dict(order, audience="buyer")
        if payment is not None:
            body["payment"] = {**payment_to_dict(payment), "redirect_url": payment.redirect_url}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CheckoutOrderApi(PublicApi):
    throttle_scope = "polling"

    @extend_schema(responses=OrderDoc)
    def get(self, request: Request, slug: str, order_id: str) -> Response:
        from payments.services import payment_reconcile_throttled

        order = order_get_for_buyer(order_id=order_id, slug=slug)
        if order.status == OrderStatus.PENDING:
            payment_reconcile_throttled(order=order)
            order = order_get_for_buyer(order_id=order_id, slug=slug)
        return Response(order_to_dict(order, audience="buyer"))


class OrderResourceApi(PublicApi):
    """The purchased content. The ``ord_`` id is the buyer's capability."""

    @extend_schema(
        parameters=[OpenApiParameter("item", str, required=False)],
        responses={200: ResourceDoc, 302: None},
    )
    def get(self, request: Request, order_id: str) -> Any:
        order = order_get_for_buyer(order_id=order_id)
        if order.status == OrderStatus.REFUNDED:
            raise Gone("This order was refunded; its content is no longer available.", code="order_refunded")
        if order.paid_at is None or order.status in (OrderStatus.PENDING, OrderStatus.FAILED, OrderStatus.CANCELLED):
            raise ApplicationError("This order has not been paid.", code="order_not_paid", status_code=403)
        items = list(order.items.all())
        item_id = request.query_params.get("item")
        if item_id:
            item = next((i for i in items if i.id == item_id), None)
            if item is None:
                raise NotFound("This order has no such item.", code="item_not_found")
        elif len(items) == 1:
            item = items[0]
        else:
            raise ValidationFailed("Name the item with ?item=.", fields={"item": ["Required for this order."]})
        if not item.fulfilled:
            raise ApplicationError("This item is still being delivered.", code="not_yet_delivered", status_code=409)
        resource = get_strategy(item.content_type).resource(item, request=request)
        if resource.redirect_url:
            return HttpResponseRedirect(resource.redirect_url)
        return Response(resource.body)


# --- Seller --------------------------------------------------------------------------------------


class SellerApi(APIView):
    permission_classes = [IsSeller]


class OrderListApi(SellerApi):
    @extend_schema(
        operation_id="orders_list",
        responses=OrderDoc(many=True),
        parameters=[
            OpenApiParameter(name, str, required=False)
            for name in (
                "status",
                "product",
                "buyer_email",
                "created_after",
                "created_before",
                "min_amount",
                "max_amount",
                "currency",
                "idempotency_key",
                "q",
                "page",
                "limit",
            )
        ],
    )
    def get(self, request: Request) -> Response:
        queryset = orders_with_details().filter(seller=request_seller(request)).order_by("-created_at", "-id")
        filterset = OrderFilter(request.query_params, queryset=queryset)
        if not filterset.is_valid():
            from rest_framework.exceptions import ValidationError

            raise ValidationError(filterset.errors)
        paginator = Pagination()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response([order_summary_to_dict(order) for order in page])


class OrderDetailApi(SellerApi):
    @extend_schema(operation_id="orders_retrieve", responses=OrderDoc)
    def get(self, request: Request, ref: str) -> Response:
        return Response(order_to_dict(order_get_for_seller(seller=request.user, ref=ref)))


class OrderStatusApi(SellerApi):
    @extend_schema(request=StatusInput, responses=OrderDoc)
    def put(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        data = StatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        order_set_status(order=order, to_status=data.validated_data["status"], user=request.user)
        return Response(order_to_dict(order_get_for_seller(seller=request.user, ref=order.id)))


class OrderDeliveryApi(SellerApi):
    @extend_schema(request=DeliveryOverrideInput, responses=OrderDoc)
    def put(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        data = DeliveryOverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        order_item_override_delivery(
            order=order,
            item_id=data.validated_data["item_id"] or None,
            content_type=data.validated_data["content_type"],
            content=data.validated_data["delivery_content"],
            user=request.user,
        )
        return Response(order_to_dict(order_get_for_seller(seller=request.user, ref=order.id)))


class OrderRefundApi(SellerApi):
    @extend_schema(request=RefundInput, responses={201: OrderDoc})
    def post(self, request: Request, ref: str) -> Response:
        from payments.services import refund_create

        order = order_get_for_seller(seller=request.user, ref=ref)
        data = RefundInput(data=request.data)
        data.is_valid(raise_exception=True)
        refund_create(
            order=order,
            amount=data.validated_data.get("amount"),
            reason=data.validated_data["reason"],
            user=request.user,
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        return Response(order_to_dict(order_get_for_seller(seller=request.user, ref=order.id)), status=201)


class OrderRetryDeliveryApi(SellerApi):
    @extend_schema(request=None, responses={202: OrderDoc})
    def post(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        order_retry_delivery(order=order, user=request.user)
        return Response(
            order_to_dict(order_get_for_seller(seller=request.user, ref=order.id)), status=status.HTTP_202_ACCEPTED
        )
