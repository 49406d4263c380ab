"""``{% nav_current "products" %}``: `` aria-current="page"`` on the nav link of the section the page
belongs to (by its path), so that the nav marks where the seller is."""

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

SECTIONS = {
    "orders": ("/dashboard/orders/",),
    "products": ("/dashboard/products/", "/dashboard/uploads/"),
    "customers": ("/dashboard/customers/",),
    "analytics": ("/dashboard/analytics/",),
    "balance": ("/dashboard/balance/",),
    "settings": ("/dashboard/settings/",),
}


def section_of(path: str) -> str:
    if path == "/dashboard/":
        return "orders"
    for section, prefixes in SECTIONS.items():
        if path.startswith(prefixes):
            return section
    return ""


@register.simple_tag(takes_context=True)
def nav_current(context: Any, section: str) -> SafeString:
    request = context.get("request")
    path = getattr(request, "path", "") if request is not None else ""
    return mark_safe(' aria-current="page"') if section_of(path) == section else mark_safe("")  # noqa: S308 - constant
