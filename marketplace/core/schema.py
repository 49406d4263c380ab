"""OpenAPI: the API-key authenticator, and every JSON response shown inside its envelope."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "marketplace.accounts.authentication.APIKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A seller API key: `Authorization: Bearer sk_...`",
        }


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            },
            "required": ["code", "message"],
        },
    },
    "required": ["success", "error"],
}


PAGINATION_SCHEMA = {
    "type": "object",
    "properties": {k: {"type": "integer", "minimum": 0} for k in ("page", "limit", "total_items", "total_pages")},
    "required": ["page", "limit", "total_items", "total_pages"],
}

# Bounds that ``marketplace.core.api.Pagination`` enforces (400 outside them).
_QUERY_BOUNDS = {"page": {"minimum": 1}, "limit": {"minimum": 1, "maximum": 100}}

_ERROR_DESCRIPTIONS = {
    "400": "Bad input",
    "401": "No or bad credentials",
    "403": "Authenticated but not allowed",
    "404": "Not found, or not yours",
    "409": "Conflict (state, idempotency, stock)",
    "410": "Gone",
    "413": "Too large",
    "415": "Wrong media type",
    "422": "Well-formed but refused",
    "429": "Rate limited (see Retry-After)",
    "503": "A dependency is down",
}

# Error answers that an operation gives beyond the ones its view's set-up implies (see
# ``_implied_errors``): each comes from a domain error the operation's service raises.
EXTRA_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("get", "/api/v1/analytics/daily"): (404,),
    ("post", "/api/v1/auth/token"): (401,),
    ("post", "/api/v1/auth/token/refresh"): (401,),
    ("post", "/api/v1/products"): (409,),
    ("patch", "/api/v1/products/{product_id}"): (409,),
    ("delete", "/api/v1/products/{product_id}"): (409,),
    ("post", "/api/v1/uploads"): (413,),
    ("post", "/api/v1/discounts"): (409,),
    ("patch", "/api/v1/discounts/{discount_id}"): (409,),
    ("post", "/api/v1/products/{product_id}/variants/{variant_id}/codes"): (409, 413),
    ("post", "/api/v1/products/{product_id}/variants/{variant_id}/codes/{code_id}/{action}"): (409,),
    ("post", "/api/v1/licenses/verify"): (404,),
    ("post", "/api/v1/licenses/activate"): (404, 409, 422),
    ("post", "/api/v1/licenses/deactivate"): (404,),
    ("post", "/api/v1/public/checkout/{slug}/quote"): (409, 422),
    ("post", "/api/v1/public/checkout/{slug}/pay"): (409, 422, 503),
    ("get", "/api/v1/orders/{order_id}/resource"): (403, 409, 410, 503),
    ("put", "/api/v1/orders/{ref}/status"): (409,),
    ("put", "/api/v1/orders/{ref}/delivery"): (409, 503),
    ("post", "/api/v1/orders/{ref}/resend-receipt"): (409, 429, 503),
    ("post", "/api/v1/licenses/{license_id}/disable"): (409,),
    ("post", "/api/v1/licenses/{license_id}/enable"): (409,),
    ("post", "/api/v1/webhook-endpoints/{endpoint_id}/test"): (409, 429),
    ("post", "/api/v1/orders/{ref}/refund"): (409, 422, 503),
    ("post", "/api/v1/orders/{ref}/retry-delivery"): (409,),
    ("put", "/api/v1/orders/{ref}/gift"): (409,),
    ("post", "/api/v1/orders/{ref}/gift/send"): (409, 503),
    ("post", "/api/v1/public/checkout/{slug}/order/{order_id}/gift/resend"): (409, 503),
    ("post", "/api/v1/payments/initiate/{order_id}"): (409, 503),
    ("post", "/api/v1/payments/webhooks/{gateway}"): (503,),
    ("post", "/api/v1/payments/webhooks/stripe-connect"): (503,),
    ("get", "/api/v1/payments/callbacks/bkash"): (404, 503),
    ("put", "/api/v1/payout-settings"): (409,),
    ("post", "/api/v1/webhook-endpoints"): (409,),
    ("patch", "/api/v1/webhook-endpoints/{endpoint_id}"): (409,),
    ("post", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend"): (409,),
    ("get", "/api/v1/webhook-endpoints/order-urls"): (404,),
    ("post", "/api/v1/webhook-endpoints/order-urls"): (409,),
}


def _implied_errors(method: str, path: str, operation: dict[str, Any], view_cls: Any) -> set[int]:
    """The error answers any operation gets from DRF and the envelope, from how its view is set up."""
    from rest_framework.permissions import AllowAny

    errors = {400}
    if view_cls is not None:
        if list(getattr(view_cls, "authentication_classes", []) or []):
            errors.add(401)  # a bad token is refused even where none is required
        permissions = list(getattr(view_cls, "permission_classes", []) or [])
        if any(not (isinstance(p, type) and issubclass(p, AllowAny)) for p in permissions):
            errors.update({401, 403})
        if list(getattr(view_cls, "throttle_classes", []) or []):
            errors.add(429)
        if method in ("post", "put", "patch") and list(getattr(view_cls, "parser_classes", []) or []):
            errors.add(415)
    if any(p.get("in") == "path" for p in operation.get("parameters", [])) or "{" in path:
        errors.add(404)
    errors.update(EXTRA_ERRORS.get((method, path), ()))
    return errors


def _views_by_operation(generator: Any) -> dict[tuple[str, str], Any]:
    views: dict[tuple[str, str], Any] = {}
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or []:
        views[(method.lower(), path)] = getattr(callback, "cls", None)
    return views


def _paginated(data_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"results": data_schema, "pagination": PAGINATION_SCHEMA},
        "required": ["results", "pagination"],
    }


def wrap_envelope(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: ``{"success": true, "data": <schema>}`` for every JSON success, lists
    that paginate as ``{results, pagination}``, and every error answer an operation can give, in the
    envelope's ``Error`` shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    views = _views_by_operation(generator)
    for path, methods in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = operation.get("parameters", [])
            query_names = set()
            for parameter in parameters:
                if parameter.get("in") == "query" and parameter.get("name") in _QUERY_BOUNDS:
                    parameter["schema"] = {"type": "integer", **_QUERY_BOUNDS[parameter["name"]]}
                    query_names.add(parameter["name"])
            for code, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content is None or not str(code).startswith("2"):
                    continue
                data_schema = content.get("schema", {})
                if method == "get" and "page" in query_names and data_schema.get("type") == "array":
                    data_schema = _paginated(data_schema)
                content["schema"] = {
                    "type": "object",
                    "properties": {"success": {"type": "boolean", "enum": [True]}, "data": data_schema},
                    "required": ["success", "data"],
                }
            for status in sorted(_implied_errors(method, path, operation, views.get((method, path)))):
                operation["responses"].setdefault(
                    str(status),
                    {
                        "description": _ERROR_DESCRIPTIONS[str(status)],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result
