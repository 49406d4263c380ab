"""Orders over HTTP: the public checkout, the buyer's resource, and the seller's orders."""

from typing import Any

from django.db.models import Q
from django.http import HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.models import APIKey
from marketplace.core.api import Pagination
from marketplace.core.errors import ApplicationError, DependencyUnavailable, Gone, NotFound, ValidationFailed
from marketplace.core.permissions import IsSeller, request_seller
from marketplace.core.ratelimit import ClientRateThrottle

from .filters import OrderFilter, order_filter_parameters
from .fulfillment import TransientDeliveryError, get_strategy
from .lifecycle import PAYABLE
from .models import OrderStatus
from .presenters import order_summary_to_dict, order_to_dict
from .schema import OrderDoc, ResourceDoc
from .selectors import (
    buyer_owns_q,
    order_get_for_buyer,
    order_get_for_buyer_account,
    order_get_for_seller,
    orders_for_list,
)
from .serializers import DeliveryOverrideInput, GiftScheduleInput, RefundInput, StatusInput
from .services import (
    order_item_override_delivery,
    order_item_replace_and_deliver,
    order_retry_delivery,
    order_seller_read,
    order_set_status,
)
from .services.gifts import order_gift_reschedule, order_gift_send_now
from .services.receipts import ReceiptRateLimited, order_receipt_resend
from .services.refunds import order_refund_create


class PublicApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [ClientRateThrottle]
    throttle_scope = "checkout"


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
        if order.access_suspended:
            raise Gone(
                "This order's payment is disputed; its content is unavailable until the dispute closes.",
                code="order_disputed",
            )
        if order.paid_at is None or order.status in PAYABLE | {OrderStatus.CANCELLED}:
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

    def order_view(self, request: Request, ref: str) -> dict[str, Any]:
        """The whole order, codes included; the read is recorded (``order_seller_read``) with the
        API key that made it, if one did."""
        order = order_get_for_seller(seller=request.user, ref=ref)
        api_key_id = request.auth.id if isinstance(request.auth, APIKey) else None
        data, _ = order_seller_read(order=order, user=request.user, api_key_id=api_key_id, via="api")
        return data


class OrderListApi(SellerApi):
    """A seller's sales, or a buyer's own purchases (a buyer's JWT or API key)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orders_list",
        responses=OrderDoc(many=True),
        description=(
            "The seller's orders (a buyer's credentials: the buyer's own purchases), newest first, without "
            "their timeline and without codes, keys or delivery content (`voucher_codes` empty, `delivery` "
            "null): read one order for those."
        ),
        parameters=[
            *order_filter_parameters(),
            OpenApiParameter("page", int, required=False),
            OpenApiParameter("limit", int, required=False),
        ],
    )
    def get(self, request: Request) -> Response:
        is_seller = getattr(request.user, "is_seller", False)
        owner = Q(seller=request_seller(request)) if is_seller else buyer_owns_q(request.user)
        queryset = orders_for_list().filter(owner).order_by("-created_at", "-id")
        filterset = OrderFilter(request.query_params, queryset=queryset)
        if not filterset.is_valid():
            from rest_framework.exceptions import ValidationError

            raise ValidationError(filterset.errors)
        paginator = Pagination()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        audience = "seller" if is_seller else "buyer"
        return paginator.get_paginated_response([order_summary_to_dict(order, audience=audience) for order in page])


class OrderDetailApi(SellerApi):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orders_retrieve",
        responses=OrderDoc,
        description=(
            "The whole order with its timeline and, for delivered items, the decrypted codes and "
            "delivery. Each read by the seller that shows codes adds a `codes_viewed` event (who, when) to "
            "the timeline. A buyer's credentials read the buyer's own orders (as the buyer sees them)."
        ),
    )
    def get(self, request: Request, ref: str) -> Response:
        if getattr(request.user, "is_seller", False):
            return Response(self.order_view(request, ref))
        order = order_get_for_buyer_account(user=request.user, ref=ref)
        return Response(order_to_dict(order, audience="buyer"))


class OrderStatusApi(SellerApi):
    @extend_schema(request=StatusInput, responses=OrderDoc)
    def put(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        data = StatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        order_set_status(order=order, to_status=data.validated_data["status"], user=request.user)
        return Response(self.order_view(request, order.id))


class OrderDeliveryApi(SellerApi):
    @extend_schema(request=DeliveryOverrideInput, responses=OrderDoc)
    def put(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        data = DeliveryOverrideInput(data=request.data)
        data.is_valid(raise_exception=True)
        replace = order_item_replace_and_deliver if data.validated_data["deliver"] else order_item_override_delivery
        replace(
            order=order,
            item_id=data.validated_data["item_id"] or None,
            content_type=data.validated_data["content_type"],
            content=data.validated_data["delivery_content"],
            user=request.user,
        )
        return Response(self.order_view(request, order.id))


class OrderRefundApi(SellerApi):
    @extend_schema(request=RefundInput, responses={201: OrderDoc})
    def post(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        data = RefundInput(data=request.data)
        data.is_valid(raise_exception=True)
        order_refund_create(
            order=order,
            amount=data.validated_data.get("amount"),
            reason=data.validated_data["reason"],
            user=request.user,
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        return Response(self.order_view(request, order.id), status=201)


class OrderRetryDeliveryApi(SellerApi):
    @extend_schema(request=None, responses={202: OrderDoc})
    def post(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        order_retry_delivery(order=order, user=request.user)
        return Response(self.order_view(request, order.id), status=status.HTTP_202_ACCEPTED)


class OrderGiftApi(SellerApi):
    @extend_schema(
        operation_id="orders_gift_reschedule",
        request=GiftScheduleInput,
        responses=OrderDoc,
        description="A new delivery time for a gift's e-mail not yet sent (409 `gift_already_sent` after).",
    )
    def put(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        data = GiftScheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        order_gift_reschedule(order=order, deliver_at=data.validated_data["deliver_at"], user=request.user)
        return Response(self.order_view(request, order.id))


class OrderGiftSendApi(SellerApi):
    @extend_schema(
        operation_id="orders_gift_send_now",
        request=None,
        responses=OrderDoc,
        description="Sends a delivered gift's e-mail to its recipient now instead of at `deliver_at`.",
    )
    def post(self, request: Request, ref: str) -> Response:
        order = order_get_for_seller(seller=request.user, ref=ref)
        try:
            order_gift_send_now(order=order, user=request.user)
        except TransientDeliveryError:
            raise DependencyUnavailable("The gift e-mail could not be sent; try again in a moment.") from None
        return Response(self.order_view(request, order.id))


class OrderResendReceiptApi(SellerApi):
    """Sends the buyer's receipt (the delivery email) again; rate limited per order, recorded in the
    order's timeline."""

    @extend_schema(request=None, responses={202: OrderDoc})
    def post(self, request: Request, ref: str) -> Response:
        if request.query_params or request.data:
            keys = [*request.query_params, *(request.data or {})]
            raise ValidationFailed(fields={key: ["Unknown parameter."] for key in keys})
        order = order_get_for_seller(seller=request.user, ref=ref)
        try:
            order_receipt_resend(order=order, user=request.user)
        except ReceiptRateLimited as exc:
            raise Throttled(wait=exc.retry_after) from None
        return Response(self.order_view(request, order.id), status=status.HTTP_202_ACCEPTED)
