"""``{{ text|linkify }}``: text a seller typed, shown with its web addresses as links — escaped first,
then only ``<a href>`` added for http(s) addresses, and the result sanitised by nh3 (ammonia) so that
nothing but those links can reach the page or the email."""

import html
import re

import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# An http(s) address, up to the first space or angle bracket; trailing punctuation stays outside.
URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


def linkify_text(text: str) -> str:
    parts: list[str] = []
    last = 0
    for match in URL_RE.finditer(text or ""):
        url = html.escape(match.group(0), quote=True)
        parts += [html.escape(text[last : match.start()], quote=True), f'<a href="{url}">{url}</a>']
        last = match.end()
    parts.append(html.escape((text or "")[last:], quote=True))
    return nh3.clean(
        "".join(parts),
        tags={"a"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https"},
        link_rel="nofollow noopener noreferrer",
    )


@register.filter
def linkify(text: str) -> SafeString:
    return mark_safe(linkify_text(text))  # noqa: S308 - escaped, then cleaned by nh3 to <a href> only
