"""The statement's filters, strict as ``shared/API.md`` says: ``type``, ``currency``, ``order`` and
``payout``, plain (``?type=sale,refund``) or in the operator spelling (``?filter.type=$in:sale,refund``,
``filter.orderId=$eq:ord_...``); ``page`` and ``limit``. An unknown parameter, field, operator or value,
or a repeated parameter, is a 400 naming it: nothing a caller sent is silently ignored."""

import re
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

from marketplace.core.money import currencies

from .models import BalanceTransaction, TransactionType

FIELDS = {"type": "type", "currency": "currency", "order": "order_id", "payout": "payout_id"}
ALIASES = {
    "type": "type",
    "currency": "currency",
    "order": "order",
    "order_id": "order",
    "orderid": "order",
    "payout": "payout",
    "payout_id": "payout",
    "payoutid": "payout",
}
PAGING = {"page", "limit"}
OPERATORS = {"$eq", "$in"}


def _field_for(name: str) -> str | None:
    return ALIASES.get(re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()) or ALIASES.get(name.lower())


def transaction_filters_parse(params: Any, *, keyset: bool = False) -> dict[str, list[str]]:
    """The wanted values per field (``type``, ``currency``, ``order``, ``payout``) from a query string.
    ``keyset``: the list also takes ``starting_after`` (read by the view, skipped here)."""
    wanted: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    for key in params:
        values = params.getlist(key)
        if len(values) > 1:
            errors[key] = ["Give this parameter once."]
            continue
        raw = values[0]
        if key in PAGING or (keyset and key == "starting_after"):
            continue
        if key.startswith("filter."):
            field = _field_for(key[len("filter.") :])
            if field is None:
                errors[key] = ["Unknown filter field."]
                continue
            operator, sep, value = raw.partition(":")
            if not sep or not operator.startswith("$"):
                operator, value = "$eq", raw
            if operator not in OPERATORS:
                errors[key] = [f"Unknown operator {operator}; use $eq or $in."]
                continue
            parts = [v.strip() for v in value.split(",")] if operator == "$in" else [value.strip()]
        elif key in FIELDS:
            field = key
            parts = [v.strip() for v in raw.split(",")]
        else:
            errors[key] = ["Unknown parameter."]
            continue
        parts = [p for p in parts if p]
        if not parts:
            errors[key] = ["Give a value."]
            continue
        if field in wanted:
            errors[key] = [f"{field} is filtered twice."]
            continue
        problem = _check(field, parts)
        if problem:
            errors[key] = [problem]
            continue
        wanted[field] = [p.upper() for p in parts] if field == "currency" else parts
    if errors:
        raise ValidationError(errors)
    return wanted


def _check(field: str, values: list[str]) -> str | None:
    if field == "type":
        unknown = [v for v in values if v not in TransactionType.values]
        return f"Unknown type: {', '.join(unknown)}." if unknown else None
    if field == "currency":
        unknown = [v for v in values if v.upper() not in currencies()]
        return f"Unknown currency: {', '.join(unknown)}." if unknown else None
    prefix = "ord_" if field == "order" else "po_"
    wrong = [v for v in values if not v.startswith(prefix) or len(v) > 40]
    return f"Not an id starting {prefix}: {', '.join(wrong)}." if wrong else None


def transactions_filter(queryset: QuerySet[BalanceTransaction], wanted: dict[str, list[str]]) -> QuerySet[Any]:
    for field, values in wanted.items():
        queryset = queryset.filter(**{f"{FIELDS[field]}__in": values})
    return queryset
