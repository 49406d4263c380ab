"""A seller's Markdown (product descriptions, store profiles) as HTML that is safe to put on a page.

Markdown is rendered first (raw HTML in it passes through), then nh3 (the Ammonia sanitiser) keeps
only the tags and attributes below: no scripts, no event handlers, no styles, no images (pages load
nothing from elsewhere), and links only to http, https and mailto, each marked ``nofollow``."""

from html import unescape

import markdown as markdown_lib
import nh3

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "em", "b", "i", "u", "s", "del", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Removed with everything inside them (other tags not allowed keep their text).
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math"}
)


def markdown_to_safe_html(text: str) -> str:
    """The HTML of ``text`` (Markdown), sanitised; '' for empty text."""
    if not text or not text.strip():
        return ""
    rendered = markdown_lib.markdown(text, extensions=["extra", "sane_lists"], output_format="html")
    return nh3.clean(
        rendered,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel="nofollow noopener noreferrer",
        strip_comments=True,
    )


def markdown_to_plain_text(text: str, *, limit: int = 160) -> str:
    """The first ``limit`` characters of ``text`` as plain words: a page's meta description."""
    html = markdown_to_safe_html(text)
    plain = " ".join(unescape(nh3.clean(html, tags=set())).split())
    if len(plain) <= limit:
        return plain
    return plain[: limit - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"
