import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.dateparse import parse_datetime

from marketplace.core.bounds import moment_in_bounds, validate_moment
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

    def filter_queryset(self, queryset: QuerySet[Order]) -> QuerySet[Order]:
        """The plain filters, then the operator spelling (``filter.amount=$gt:10000``) of the
        same fields: both may be combined, and all of them must hold."""
        queryset = super().filter_queryset(queryset)
        operator_q = operator_filters_q(self.data)
        return queryset.filter(operator_q) if operator_q else queryset

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


# --- The operator spelling: ``filter.<field>=$<op>:<value>`` ---------------------------------------

OPERATORS = ("eq", "in", "gt", "gte", "lt", "lte")
_ORDERED = frozenset(OPERATORS)
_EQUALITY = frozenset({"eq", "in"})


@dataclass(frozen=True)
class OperatorField:
    """One field of the operator spelling: the lookup it filters, the operators it takes and how
    a value is read (raising ``ValueError`` with a message for a value it cannot mean)."""

    lookup: str
    operators: frozenset[str]
    parse: Callable[[str], Any]


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Must not be empty.")
    return value


def _amount(value: str) -> int:
    try:
        amount = int(value.strip())
    except ValueError:
        raise ValueError("Must be a whole number of minor units.") from None
    if not 0 <= amount <= MAX_AMOUNT:
        raise ValueError(f"Must be between 0 and {MAX_AMOUNT}.")
    return amount


def _moment(value: str) -> datetime:
    moment = parse_datetime(value.strip().replace(" ", "+"))
    if moment is None:
        raise ValueError("Must be an ISO 8601 date and time.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not moment_in_bounds(moment):
        raise ValueError("Must be between 2000-01-01 and 2999-12-31.")
    return moment


def _status(value: str) -> str:
    value = value.strip()
    if value not in OrderStatus.values:
        raise ValueError(f"Unknown status: {value}.")
    return value


def _currency(value: str) -> str:
    return _text(value).upper()


OPERATOR_FIELDS: dict[str, OperatorField] = {
    "id": OperatorField("id", _EQUALITY, _text),
    "order_number": OperatorField("order_number", _EQUALITY, _text),
    "status": OperatorField("status", _EQUALITY, _status),
    "amount": OperatorField("total_amount", _ORDERED, _amount),
    "total_amount": OperatorField("total_amount", _ORDERED, _amount),
    "currency": OperatorField("currency", _EQUALITY, _currency),
    "buyer_email": OperatorField("buyer_email", _EQUALITY, _text),
    "idempotency_key": OperatorField("idempotency_key", _EQUALITY, _text),
    "payment_reference": OperatorField("payment_reference", _EQUALITY, _text),
    "product": OperatorField("product", _EQUALITY, _text),
    "created_at": OperatorField("created_at", _ORDERED, _moment),
    "paid_at": OperatorField("paid_at", _ORDERED, _moment),
}
# The query parameters this spelling answers to (the camelCase spellings are the same fields).
OPERATOR_PARAMS = tuple(f"filter.{name}" for name in OPERATOR_FIELDS)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def operator_filter_name(param: str) -> str | None:
    """``filter.idempotencyKey`` → ``filter.idempotency_key``; ``None`` for other parameters."""
    if not param.startswith("filter."):
        return None
    return f"filter.{_snake(param.removeprefix('filter.'))}"


def _field_q(field: OperatorField, operator: str, raw: str) -> Q:
    if operator == "in":
        values = [field.parse(part) for part in raw.split(",") if part.strip()]
        if not values:
            raise ValueError("$in needs at least one value.")
        if field.lookup == "product":
            return Q(product_id__in=values) | Q(product__slug__in=values)
        if field.lookup == "buyer_email":
            either = Q()
            for value in values:
                either |= Q(buyer_email__iexact=value)
            return either
        return Q(**{f"{field.lookup}__in": values})
    value = field.parse(raw)
    if field.lookup == "product":
        return Q(product_id=value) | Q(product__slug=value)
    if field.lookup == "buyer_email":
        return Q(buyer_email__iexact=value)
    suffix = "" if operator == "eq" else f"__{operator}"
    return Q(**{f"{field.lookup}{suffix}": value})


def operator_filters_q(params: Any) -> Q:
    """The ``filter.*`` parameters of a query as one ``Q`` (all of them must hold). An unknown
    field, an unknown operator or a value the field cannot take is a 400 naming the parameter."""
    from rest_framework.exceptions import ValidationError

    combined = Q()
    errors: dict[str, list[str]] = {}
    for param in params:
        name = operator_filter_name(param)
        if name is None:
            continue
        field = OPERATOR_FIELDS.get(name.removeprefix("filter."))
        if field is None:
            errors[param] = [f"Unknown filter field. Known: {', '.join(sorted(OPERATOR_FIELDS))}."]
            continue
        for raw in params.getlist(param) if hasattr(params, "getlist") else [params[param]]:
            operator, value = "eq", raw
            if raw.startswith("$"):
                operator, sep, value = raw[1:].partition(":")
                if operator in OPERATORS and not sep:
                    errors[param] = [f"Write the operator and its value as ${operator}:value."]
                    continue
                if operator not in OPERATORS:
                    errors[param] = [
                        f"Unknown filter operator '${operator}'. Use one of "
                        + ", ".join(f"${op}" for op in OPERATORS)
                        + " as $op:value."
                    ]
                    continue
            if operator not in field.operators:
                allowed = ", ".join(f"${op}" for op in OPERATORS if op in field.operators)
                errors[param] = [f"The operator ${operator} does not apply to this field (use {allowed})."]
                continue
            try:
                combined &= _field_q(field, operator, value)
            except ValueError as error:
                errors[param] = [str(error)]
    if errors:
        raise ValidationError(errors)
    return combined


PLAIN_FILTER_PARAMS = (
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
)


def order_filter_parameters() -> list[Any]:
    """The OpenAPI parameters of the order lists: the plain filters and their operator spelling.
    They are also what those views accept (``marketplace.core.strict_input``)."""
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter

    plain = [OpenApiParameter(name, OpenApiTypes.STR, required=False) for name in PLAIN_FILTER_PARAMS]
    operator = [
        OpenApiParameter(
            name,
            OpenApiTypes.STR,
            required=False,
            description=(
                "`$eq:`, `$in:` (comma list)"
                + (", `$gt:`, `$gte:`, `$lt:`, `$lte:`" if OPERATOR_FIELDS[name[7:]].operators == _ORDERED else "")
                + " then the value; a bare value is `$eq`. The camelCase spelling of the field is the same."
            ),
        )
        for name in OPERATOR_PARAMS
    ]
    return plain + operator
