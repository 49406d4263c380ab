import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from marketplace.core.bounds import validate_moment
from marketplace.core.money import MAX_AMOUNT

from .models import Order, OrderItem, OrderStatus


class OrderFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(method="filter_status")
    product = django_filters.CharFilter(method="filter_product")
    buyer_email = django_filters.CharFilter(field_name="buyer_email", lookup_expr="iexact")
    # Bounded where they are parsed: a time past year 2999 or an amount past MAX_AMOUNT is a 400,
    # not an overflow in the database driver.
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", validators=[validate_moment]
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", validators=[validate_moment]
    )
    min_amount = django_filters.NumberFilter(
        field_name="total_amount", lookup_expr="gte", min_value=0, max_value=MAX_AMOUNT
    )
    max_amount = django_filters.NumberFilter(
        field_name="total_amount", lookup_expr="lte", min_value=0, max_value=MAX_AMOUNT
    )
    # Amounts are minor units of each order's own currency: with several currencies, name one.
    currency = django_filters.CharFilter(method="filter_currency")
    idempotency_key = django_filters.CharFilter(field_name="idempotency_key")
    q = django_filters.CharFilter(method="filter_q")

    class Meta:
        model = Order
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        wanted = [s.strip() for s in value.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in OrderStatus.values]
        if unknown:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"status": [f"Unknown status: {', '.join(unknown)}."]})
        return queryset.filter(status__in=wanted)

    def filter_currency(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        return queryset.filter(currency=value.strip().upper())

    def filter_product(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        """Orders with an item of the product (by id or slug): an order of several products is found
        under each of them, not only under the product it was placed from."""
        items = OrderItem.objects.filter(order=OuterRef("pk")).filter(Q(product_id=value) | Q(product__slug=value))
        return queryset.filter(Exists(items))

    def filter_q(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(order_number=value)
            | Q(id=value)
            | Q(buyer_email__icontains=value)
            | Q(product__title__icontains=value)
            | Q(payment_reference=value)
        )
