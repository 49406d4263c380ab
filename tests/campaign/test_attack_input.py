"""Hostile input, as a stranger or a signed-in seller would send it (issue 10, items 9, 10, 11 and 13).

Every refusal is a clear 400 (or 413) in the envelope of ``shared/API.md`` under ``/api/``, a form
error or a plain 400/413 on pages — never a 500 — and changes nothing. Run on SQLite and on
PostgreSQL (where a NUL in text, or a count beyond 32 bits, used to be a 500).
"""

import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.parsers import JSONParser as DRFJSONParser

from catalog.models import Discount, Variant
from marketplace.core.bounds import MAX_COUNT
from marketplace.core.parsers import JSONParser, nesting_depth
from orders.models import Order
from payments.models import Refund

from . import secrets_registry
from .world import Tenant, build_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(settings: Any, tmp_path: Any) -> Tenant:
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return build_tenant("Attack")


@pytest.fixture
def stranger() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture
def api(tenant: Tenant) -> Any:
    """The seller's API client, answering a 500 instead of raising it (as a real server would)."""
    client = tenant.client
    client.raise_request_exception = False
    return client


@pytest.fixture
def dashboard(tenant: Tenant) -> Client:
    browser = Client(raise_request_exception=False)
    browser.force_login(tenant.seller)
    return browser


def error(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = json.loads(response.content)
    assert body["success"] is False
    return dict(body["error"])


def counts() -> tuple[int, int, int, int]:
    return Order.objects.count(), Discount.objects.count(), Refund.objects.count(), Variant.objects.count()


# --- 9: JSON nesting and body size -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["quote", "pay"])
@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_json_nested_deeper_than_32_is_a_400_before_parsing(tenant: Tenant, stranger: Client, path: str, depth: int):
    before = counts()
    body = '{"items": ' + "[" * depth + "]" * depth + "}"

    response = stranger.post(
        f"/api/v1/public/checkout/{tenant.product.slug}/{path}", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert "at most 32 levels" in error(response)["message"]
    assert counts() == before


def test_the_depth_scan_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    nested_32 = "[" * 32 + "]" * 32
    assert JSONParser().parse(_stream(nested_32)) == json.loads(nested_32)  # 32 is allowed
    with pytest.raises(Exception) as refused:
        JSONParser().parse(_stream("[" * 33 + "]" * 33))
    assert type(refused.value).__name__ == "ValidationError"


def _stream(text: str) -> Any:
    import io

    return io.BytesIO(text.encode())


def _views() -> list[Any]:
    found: list[Any] = []

    def walk(patterns: list[Any]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "cls", None)
                if view is not None:
                    found.append(view)

    walk(get_resolver().url_patterns)
    return found


def test_every_api_view_parses_json_with_the_bounded_parser() -> None:
    """A view that names DRF's own JSONParser in ``parser_classes`` would bring the 500 back."""
    unbounded = [
        view.__name__
        for view in _views()
        for parser in getattr(view, "parser_classes", [])
        if issubclass(parser, DRFJSONParser) and not issubclass(parser, JSONParser)
    ]
    assert unbounded == []
    assert any(JSONParser in getattr(view, "parser_classes", []) for view in _views())


def test_a_body_over_the_limit_is_413_in_the_envelope(tenant: Tenant, stranger: Client, settings: Any):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    before = counts()
    body = {"buyer_email": "big@buyer.test", "variant_id": tenant.variant.id, "meta": {"note": "x" * 5_000}}
    pay = f"/api/v1/public/checkout/{tenant.product.slug}/pay"

    as_json = stranger.post(pay, json.dumps(body), content_type="application/json")
    as_form = stranger.post(pay, {"buyer_email": "x" * 5_000})  # Django reads this one itself
    page = stranger.post("/accounts/login/", {"email": "x" * 5_000, "password": "p"})

    for response in (as_json, as_form):
        assert response.status_code == 413
        assert error(response)["code"] == "payload_too_large"
    assert (page.status_code, page["Content-Type"]) == (413, "text/plain; charset=utf-8")
    assert counts() == before


# --- 10: impossible dates, huge integers, amounts that are not numbers ----------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("created_after=2026-02-30T00:00:00Z", "created_after"),
        ("created_before=9999-12-31T23:59:59-05:00", "created_before"),
        ("created_after=0001-01-01T00:00:00%2B05:00", "created_after"),
        (f"min_amount={2**70}", "min_amount"),
        ("max_amount=1e309", "max_amount"),
        ("max_amount=Infinity", "max_amount"),
    ],
)
def test_order_filters_out_of_range_are_400(api: Any, query: str, field: str) -> None:
    for path in ("/api/v1/orders", "/api/v1/orders/export.csv", "/api/v1/orders/my-sales"):
        response = api.get(f"{path}?{query}")
        assert response.status_code == 400, (path, response.content[:300])
        assert error(response)["code"] == "validation_error"
        assert field in error(response)["fields"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("end=9999-12-31", "end"), ("end=0001-01-05", "end"), ("start=0001-01-01&end=0001-01-02", "start")],
)
def test_analytics_ranges_at_the_edge_of_the_calendar_are_400(api: Any, dashboard: Client, query: str, field: str):
    response = api.get(f"/api/v1/analytics/daily?{query}")
    assert response.status_code == 400
    assert error(response)["fields"][field] == ["Must be between 2000-01-01 and 2999-12-31."]

    page = dashboard.get(f"/dashboard/analytics/?{query}")
    assert page.status_code == 400
    assert page.context["form"].errors[field] == ["Must be between 2000-01-01 and 2999-12-31."]


def test_dashboard_order_filters_give_form_errors(dashboard: Client) -> None:
    for query, field in (
        ({"created_to": "9999-12-31"}, "created_to"),
        ({"created_from": "2026-02-30"}, "created_from"),
        ({"currency": "USD", "min_amount": "Infinity"}, "min_amount"),
        ({"currency": "USD", "min_amount": "1e309"}, "min_amount"),
        ({"currency": "USD", "max_amount": "NaN"}, "max_amount"),
        ({"currency": "USD", "max_amount": str(2**70)}, "max_amount"),
    ):
        page = dashboard.get("/dashboard/", query)
        assert page.status_code == 200, query
        assert field in page.context["form"].errors, query


@pytest.mark.parametrize("amount", ["Infinity", "-Infinity", "NaN", "sNaN", "1e309", "1E2", str(2**70), "1" * 40])
def test_a_dashboard_refund_of_no_real_amount_is_a_form_message_and_refunds_nothing(
    tenant: Tenant, dashboard: Client, amount: str
) -> None:
    """The amount is read before anything else: a readable amount would get the refund service's
    answer for this unpaid order instead ("cannot be refunded")."""
    before = counts()

    response = dashboard.post(f"/dashboard/orders/{tenant.order.order_number}/refund/", {"amount": amount}, follow=True)

    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert len(shown) == 1 and shown[0].startswith("Enter "), shown
    assert counts() == before
    assert Order.objects.get(pk=tenant.order.pk).refunded_amount == 0


@pytest.mark.parametrize("value", [2**70, 2**40, MAX_COUNT + 1])
def test_counts_beyond_their_column_are_400_not_a_database_error(api: Any, tenant: Tenant, value: int) -> None:
    before = counts()
    stock_before = Variant.objects.get(pk=tenant.variant.pk).stock

    discount = api.post(
        "/api/v1/discounts", {"code": "HUGE1", "kind": "percent", "value": 10, "max_uses": value}, format="json"
    )
    patch = api.patch(f"/api/v1/discounts/{tenant.discount.id}", {"min_quantity": value}, format="json")
    refund = api.post(f"/api/v1/orders/{tenant.order.id}/refund", {"amount": value}, format="json")
    variant = {"id": tenant.variant.id, "name": tenant.variant.name, "price": 2500, "stock": value}
    stock = api.patch(f"/api/v1/products/{tenant.product.id}", {"variants": [variant]}, format="json")

    for response, field in ((discount, "max_uses"), (patch, "min_quantity"), (stock, "variants.0.stock")):
        assert response.status_code == 400, response.content
        assert field in error(response)["fields"]
    assert refund.status_code in (400, 409)  # too big, or (2**40) a pending order: never a 500
    assert counts() == before
    assert Discount.objects.get(pk=tenant.discount.pk).min_quantity == 1
    assert Variant.objects.get(pk=tenant.variant.pk).stock == stock_before


def test_a_json_body_with_an_integer_beyond_64_bits_or_an_infinite_number_is_400(
    tenant: Tenant, stranger: Client
) -> None:
    before = counts()
    pay = f"/api/v1/public/checkout/{tenant.product.slug}/pay"
    for raw, field in (
        (f'{{"variant_id": "{tenant.variant.id}", "quantity": {2**70}}}', "quantity"),
        (f'{{"variant_id": "{tenant.variant.id}", "meta": {{"n": 1e309}}}}', "meta.n"),
    ):
        response = stranger.post(pay, raw, content_type="application/json")
        assert response.status_code == 400, raw
        assert list(error(response)["fields"]) == [field]
    assert counts() == before


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-05:00", "2026-02-30T10:00:00Z", "0001-01-01T00:00:00+05:00"])
def test_discount_dates_out_of_the_calendar_are_400(api: Any, moment: str) -> None:
    before = counts()
    response = api.post(
        "/api/v1/discounts", {"code": "LATE1", "kind": "percent", "value": 10, "expires_at": moment}, format="json"
    )
    assert response.status_code == 400
    assert "expires_at" in error(response)["fields"]
    assert counts() == before


def test_a_discount_form_with_a_huge_count_or_far_date_is_a_form_error(dashboard: Client) -> None:
    before = counts()
    for extra, field in (
        ({"max_uses": str(2**70)}, "max_uses"),
        ({"max_uses": str(2**40)}, "max_uses"),
        ({"expires_at": "9999-12-31T23:59"}, "expires_at"),
    ):
        data = {"code": "FORM1", "kind": "percent", "value": "10", "min_quantity": "1", **extra}
        page = dashboard.post("/dashboard/settings/discounts/new/", data)
        assert page.status_code == 200, extra
        assert field in page.context["form"].errors, (extra, page.context["form"].errors)
    assert counts() == before


# --- 11: NUL characters -----------------------------------------------------------------------------

NUL_MESSAGE = "Null characters are not allowed."


def test_nul_in_a_json_key_or_value_is_400_everywhere(tenant: Tenant, stranger: Client, api: Any) -> None:
    before = counts()
    pay = f"/api/v1/public/checkout/{tenant.product.slug}/pay"
    for body, field in (
        ({"buyer_email": "a@b.test", "variant_id": tenant.variant.id, "meta": {"note": "a\x00b"}}, "meta.note"),
        ({"buyer_email": "a@b.test", "variant_id": tenant.variant.id, "meta": {"k\x00": "v"}}, "meta"),
        ({"buyer_email": "a@b.test", "items": [{"variant_id": "var_\x00"}]}, "items.0.variant_id"),
    ):
        response = stranger.post(pay, json.dumps(body), content_type="application/json")
        assert response.status_code == 400
        assert error(response) == {"code": "validation_error", "message": error(response)["message"],
                                   "fields": {field: [error(response)["fields"][field][0]]}}  # fmt: skip
        assert error(response)["fields"][field][0].startswith(NUL_MESSAGE)
    seller_side = api.patch(f"/api/v1/products/{tenant.product.id}", {"title": "T\x00"}, format="json")
    assert seller_side.status_code == 400
    assert error(seller_side)["fields"] == {"title": [NUL_MESSAGE]}
    assert counts() == before


def test_nul_in_a_path_or_query_is_400_in_the_envelope_or_a_plain_400_page(
    tenant: Tenant, stranger: Client, api: Any, dashboard: Client
) -> None:
    slug, order = tenant.product.slug, tenant.order
    for client, url, field in (
        (stranger, f"/api/v1/public/checkout/{slug}/order/ord_%00x", "path"),
        (api, "/api/v1/orders/ord_%00", "path"),
        (api, f"/api/v1/products/{tenant.product.id}%00", "path"),
        (api, "/api/v1/orders?q=a%00b", "q"),
        (api, "/api/v1/orders?status%00=paid", "query"),
        (stranger, "/api/v1/payments/initiate/ord_%00", "path"),
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert error(response) == {"code": "validation_error", "message": f"{field}: {NUL_MESSAGE}",
                                   "fields": {field: [NUL_MESSAGE]}}  # fmt: skip
    for client, url in (
        (stranger, f"/c/{slug}/orders/ord_%00x"),
        (dashboard, "/dashboard/orders/ord_%00/"),
        (dashboard, "/dashboard/?q=a%00b"),
    ):
        page = client.get(url)
        assert (page.status_code, page["Content-Type"]) == (400, "text/plain; charset=utf-8"), url
    form = dashboard.post(
        f"/dashboard/orders/{order.order_number}/status/",
        "status=cancelled%00",
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status_code == 400
    assert Order.objects.get(pk=order.pk).status == order.status


# --- 13 (first half): order ids are never logged ------------------------------------------------------


def test_an_order_id_is_registered_as_a_secret_for_the_log_check(tenant: Tenant) -> None:
    assert secrets_registry.registered()[tenant.order.id] == "order id (the buyer's capability)"


def test_request_lines_name_the_route_and_lifecycle_lines_the_order_number(
    tenant: Tenant, stranger: Client, api: Any, caplog: Any
) -> None:
    order = tenant.order
    with caplog.at_level(logging.INFO):
        stranger.get(f"/api/v1/public/checkout/{tenant.product.slug}/order/{order.id}")
        stranger.get(f"/api/v1/public/checkout/not-{tenant.product.slug}/order/{order.id}")  # a 404
        stranger.get(f"/c/{tenant.product.slug}/orders/{order.id}/no-such-page")  # no route: redacted
        api.put(f"/api/v1/orders/{order.id}/status", {"status": "cancelled"}, format="json")
    text = "\n".join(secrets_registry.record_text(record) for record in caplog.records)
    assert order.id not in text
    assert f"order {order.order_number}: pending -> cancelled" in text
    assert "Not Found: /api/v1/public/checkout/<slug:slug>/order/<str:order_id>" in text
    assert "/orders/ord_<redacted>/no-such-page" in text, text


def test_other_libraries_lines_have_order_ids_redacted_by_the_handlers_filter(rf: Any) -> None:
    """Celery logs a task's arguments (an order id) in ``data``; Django attaches the request (whose
    repr is the raw path) to its error lines. The handlers' filter redacts both."""
    from marketplace.core.log_context import ContextFilter

    order_id = "ord_0123456789abcdefABCDEF"
    context = {"name": "orders.tasks.fulfil_order", "args": f"('{order_id}',)"}
    celery = logging.makeLogRecord(
        {"name": "celery.app.trace", "msg": "Task %(name)s%(args)s succeeded", "args": context, "data": context}
    )
    request = rf.get(f"/c/shop/orders/{order_id}")
    django = logging.makeLogRecord(
        {"name": "django.request", "msg": "%s: %s", "args": ("Internal Server Error", request.path), "request": request}
    )
    for record in (celery, django):
        assert ContextFilter().filter(record)
        assert order_id not in secrets_registry.record_text(record)
    assert "ord_<redacted>" in secrets_registry.record_text(django)
