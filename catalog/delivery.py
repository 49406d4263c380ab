"""A product's delivery *settings*, per delivery type: what a seller may save, checked when the
product is saved (API, dashboard, admin) and when a seller overrides an item's delivery.

This is the settings half of each delivery type; the fulfillment half (what happens once an order
is paid, what the buyer is handed) is in ``orders/fulfillment/``, one strategy per type. The split
keeps the dependency one way: orders uses the catalog, the catalog never imports orders.

The partner signing secret lives here too: it is part of a ``partner_api`` product's settings
(made, sealed and shown to the seller by the catalog); fulfillment only reads it to sign calls.
"""

import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from marketplace.core.crypto import UndecryptableValue, decrypt, encrypt
from marketplace.core.errors import ValidationFailed
from marketplace.core.outbound_http import OutboundError, OutboundPolicy, outbound_url_check, private_urls_allowed

from .models import DeliveryType, Product, Upload


@dataclass
class DeliverySettings:
    content_type: str
    content: str = ""
    redemption_instructions: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def invalid(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={f"delivery.{field_name}": [message]})


# Types whose units are counted from a stock of codes (the variant's pool) rather than a counter.
STOCK_FROM_CODES: frozenset[str] = frozenset({DeliveryType.CODE_POOL})


def variant_delivery_content(variant: Any, content_type: str, product_content: str) -> str:
    """What a unit of ``variant`` delivers: the variant's own file when it has one ("Deluxe"
    delivers another file than "Standard"), otherwise the product's content."""
    own = getattr(variant, "delivery_content", "") or ""
    if content_type == DeliveryType.FILE and own:
        return str(own)
    return product_content


def counts_codes(delivery_type: str) -> bool:
    """Whether a product of this type sells from its variants' code pools (stock = available codes)."""
    return delivery_type in STOCK_FROM_CODES


# --- Partner signing secrets ---------------------------------------------------------------------


def partner_url_policy() -> OutboundPolicy:
    """https:// unless ``PARTNER_ALLOW_HTTP``; private addresses only where local receivers are allowed."""
    return OutboundPolicy(allow_http=django_settings.PARTNER_ALLOW_HTTP, allow_private=private_urls_allowed())


def new_partner_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# At rest, ``delivery_options["partner"]["secret"]`` is Fernet ciphertext (like codes and sellers'
# webhook secrets); the plain ``whsec_...`` value exists only in memory, to sign and to show the seller.


def seal_partner_secret(secret: str) -> str:
    return encrypt(secret)


def partner_secret(options: dict[str, Any] | None) -> str:
    """The plain signing secret of a partner_api product's ``delivery_options`` ("" when none).
    A plain ``whsec_`` value (written before secrets were sealed) is returned as it is."""
    value = str(((options or {}).get("partner") or {}).get("secret") or "")
    if not value or value.startswith("whsec_"):
        return value
    return decrypt(value)


def partner_secret_of(product: Product) -> str:
    """The plain partner signing secret of a product ("" when it has none)."""
    return partner_secret(product.delivery_options) if product.delivery_type == DeliveryType.PARTNER_API else ""


# What the buyer is asked at checkout for a partner product (``fulfillment_input.player_id``): the
# seller names the field and explains it; these are the words when they did not.
PARTNER_INPUT_LIMITS = {"input_label": 80, "input_help": 300}
DEFAULT_INPUT_LABEL = "Player / account ID"
DEFAULT_INPUT_HELP = "Where the seller delivers your purchase, e.g. your in-game player ID."


def partner_input_field(options: dict[str, Any] | None) -> tuple[str, str]:
    """The label and help of the buyer's input field of a partner product, as its seller set them."""
    partner = (options or {}).get("partner") or {}
    if not isinstance(partner, dict):
        partner = {}
    return (
        str(partner.get("input_label") or DEFAULT_INPUT_LABEL),
        str(partner.get("input_help") or DEFAULT_INPUT_HELP),
    )


def partner_for_seller(options: dict[str, Any] | None, *, reveal: bool = False) -> dict[str, Any] | None:
    """The partner settings as the seller sees them: the URL and a hint of the signing secret (its
    last 4 characters). The plain secret only with ``reveal``: in the answer that made it (a
    product created, a secret replaced), once, like API keys and webhook secrets."""
    partner = (options or {}).get("partner")
    if not isinstance(partner, dict):
        return None
    view: dict[str, Any] = {"url": partner.get("url")}
    view.update({name: partner[name] for name in PARTNER_INPUT_LIMITS if partner.get(name)})
    secret = partner_secret(options) if partner.get("secret") else ""
    view["secret_hint"] = secret[-4:] if secret else None
    if reveal and secret:
        view["secret"] = secret
    return view


# --- The settings of each type -------------------------------------------------------------------

_https = URLValidator(schemes=["https"])
# A licence key's optional prefix (``ACME-XXXXX-...``).
LICENSE_PREFIX_RE = re.compile(r"^[A-Z0-9]{1,12}$")


def _file_settings(settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
    """A file the seller uploaded to private storage: the reference the upload returned, theirs only."""
    key = settings.content.strip()
    if not key:
        raise invalid("content", "Upload the file first and pass the `url` that the upload returned.")
    if not Upload.objects.filter(key=key, seller=seller).exists():
        raise invalid("content", "No upload of yours has this reference.")
    return DeliverySettings("file", key, settings.redemption_instructions.strip(), {})


def _link_settings(settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
    """An https URL the buyer is sent to. A bare domain ("example.com/guide") is taken as https."""
    url = settings.content.strip()
    if url and "://" not in url:
        url = "https://" + url
    if len(url) > 2000:
        raise invalid("content", "The link must be at most 2000 characters.")
    try:
        _https(url)
    except ValidationError:
        raise invalid("content", "Must be a valid https:// URL.") from None
    return DeliverySettings("link", url, settings.redemption_instructions.strip(), {})


def _text_settings(settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
    """Text shown to the buyer."""
    text = settings.content.strip()
    if not text:
        raise invalid("content", "Text to deliver is required.")
    if len(text) > 20000:
        raise invalid("content", "The text must be at most 20000 characters.")
    return DeliverySettings("text", text, settings.redemption_instructions.strip(), {})


def _code_pool_settings(settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
    """Each unit is a code from the variant's pool: there is no content of the product's own."""
    if settings.content.strip():
        raise invalid("content", "Leave content empty: each buyer gets a code from the variant's pool.")
    return DeliverySettings("code_pool", "", settings.redemption_instructions.strip(), {})


def _clean_positive(value: Any, field: str, *, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise invalid(f"license.{field}", f"Must be a whole number from 1 to {maximum}, or null.")
    return value


def _license_key_settings(settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
    """One generated key per unit: an activation limit, an expiry in days and a prefix, all optional."""
    raw = settings.options.get("license") or {}
    if not isinstance(raw, dict):
        raise invalid("license", "Must be an object with activation_limit and expires_in_days.")
    unknown = set(raw) - {"activation_limit", "expires_in_days", "prefix"}
    if unknown:
        raise invalid(f"license.{sorted(unknown)[0]}", "Unknown field.")
    prefix = raw.get("prefix") or ""
    if prefix and (not isinstance(prefix, str) or not LICENSE_PREFIX_RE.match(prefix)):
        raise invalid("license.prefix", "Up to 12 uppercase letters or digits.")
    license_options = {
        "activation_limit": _clean_positive(raw.get("activation_limit"), "activation_limit", maximum=100_000),
        "expires_in_days": _clean_positive(raw.get("expires_in_days"), "expires_in_days", maximum=36_500),
        "prefix": prefix or None,
    }
    return DeliverySettings("license_key", "", settings.redemption_instructions.strip(), {"license": license_options})


def _partner_api_settings(settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
    """The seller's fulfillment URL, checked by the one outbound client's rules now (and again on
    every call), and a signing secret: generated when left out, kept when passed back sealed."""
    raw = settings.options.get("partner") or {}
    if not isinstance(raw, dict):
        raise invalid("partner", "Must be an object with a url.")
    unknown = set(raw) - {"url", "secret", *PARTNER_INPUT_LIMITS}
    if unknown:
        raise invalid(f"partner.{sorted(unknown)[0]}", "Unknown field.")
    asked: dict[str, str] = {}
    for name, limit in PARTNER_INPUT_LIMITS.items():
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise invalid(f"partner.{name}", "Must be text.")
        if len(value.strip()) > limit:
            raise invalid(f"partner.{name}", f"At most {limit} characters.")
        if value.strip():
            asked[name] = value.strip()
    url = str(raw.get("url") or "").strip()
    try:
        outbound_url_check(url, policy=partner_url_policy())
    except OutboundError as exc:
        raise invalid("partner.url", exc.detail) from None
    secret = raw.get("secret") or new_partner_secret()
    if isinstance(secret, str) and not secret.startswith("whsec_"):
        # The sealed secret a product already has, passed back unchanged (an update that keeps it).
        try:
            secret = partner_secret({"partner": {"secret": secret}})
        except UndecryptableValue:
            secret = None
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise invalid("partner.secret", "Leave it out to have one generated.")
    sealed = seal_partner_secret(secret)
    return DeliverySettings(
        "partner_api",
        "",
        settings.redemption_instructions.strip(),
        {"partner": {"url": url, "secret": sealed, **asked}},
    )


SettingsValidator = Callable[..., DeliverySettings]

# One entry per delivery type, in the order of ``DeliveryType`` (the order error messages list them
# in). ``orders/fulfillment`` has one strategy for each of these keys; a test holds the two together.
_VALIDATORS: dict[str, SettingsValidator] = {
    DeliveryType.FILE: _file_settings,
    DeliveryType.LINK: _link_settings,
    DeliveryType.TEXT: _text_settings,
    DeliveryType.CODE_POOL: _code_pool_settings,
    DeliveryType.LICENSE_KEY: _license_key_settings,
    DeliveryType.PARTNER_API: _partner_api_settings,
}


def delivery_types() -> list[str]:
    """Every delivery type a product may have, as plain strings."""
    return [str(content_type) for content_type in _VALIDATORS]


def validate_delivery(settings: DeliverySettings, *, seller: Any) -> DeliverySettings:
    """Returns the cleaned settings of the type named in ``settings.content_type``, or raises
    ``ValidationFailed`` naming the field (``delivery.<field>``)."""
    validator = _VALIDATORS.get(settings.content_type)
    if validator is None:
        raise invalid("content_type", f"Must be one of: {', '.join(delivery_types())}.")
    return validator(settings, seller=seller)
