from django import template

from marketplace.core.money import format_money

register = template.Library()


@register.simple_tag
def money(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    return format_money(int(amount), currency)
