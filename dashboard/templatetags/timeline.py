"""``{{ event|timeline_sentence }}``: an order's timeline entry as a sentence (``orders.timeline``)."""

from typing import Any

from django import template

from orders.timeline import event_sentence

register = template.Library()


@register.filter
def timeline_sentence(event: Any) -> str:
    return event_sentence(event)
