"""Every write to the catalog: products, their variants and delivery settings, and uploads.

The API, the dashboard and the admin call these functions; none of them writes models directly.
Input arrives already shaped (types checked by the serializers or forms); the rules live here.
"""

import logging
import mimetypes
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.files.storage import storages
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils.text import slugify

from marketplace.accounts.services import seller_store_slug_ensure
from marketplace.core.bounds import MAX_COUNT
from marketplace.core.errors import Conflict, DependencyUnavailable, PayloadTooLarge, ValidationFailed
from marketplace.core.ids import random_token
from marketplace.core.money import MAX_AMOUNT, currencies

from .covers import cover_image_delete, cover_image_make
from .delivery import DeliverySettings, validate_delivery
from .models import DeliveryType, Product, ProductStatus, Upload, Variant
from .ports import product_file_replaced

logger = logging.getLogger(__name__)

SLUG_MAX_LENGTH = 80
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DEFAULT_VARIANT_NAME = "Standard"
MAX_VARIANTS = 100
TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 20000
REDEMPTION_MAX_LENGTH = 5000
VARIANT_NAME_MAX_LENGTH = 120
FILENAME_MAX_LENGTH = 120
_CONTENT_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$")
_DELIVERY_KEYS = ("content_type", "content", "redemption_instructions", "license", "partner")


# --- Field rules ----------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", fields={field: [message]})


def validate_slug(slug: str, *, field: str = "slug") -> str:
    if len(slug) > SLUG_MAX_LENGTH:
        raise _invalid(field, f"Must be at most {SLUG_MAX_LENGTH} characters.")
    if not SLUG_PATTERN.match(slug):
        raise _invalid(field, "Use lowercase letters, digits and single hyphens (for example `my-ebook-2`).")
    return slug


def validate_amount(value: Any, *, field: str) -> int:
    # bool is an int in Python; a price of `true` is a client bug, not one cent.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, "Must be a whole number of the currency's minor unit (e.g. 1999 for $19.99).")
    if value < 0 or value > MAX_AMOUNT:
        raise _invalid(field, f"Must be between 0 and {MAX_AMOUNT}.")
    return value


def validate_currency_code(value: str, *, field: str = "currency") -> str:
    if value not in currencies():
        if value.upper() in currencies():
            raise _invalid(field, f"Use the uppercase ISO 4217 code: {value.upper()}.")
        raise _invalid(field, f"'{value}' is not an ISO 4217 currency code.")
    return value


def _clean_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise _invalid("title", "A title is required.")
    if len(title) > TITLE_MAX_LENGTH:
        raise _invalid("title", f"Must be at most {TITLE_MAX_LENGTH} characters.")
    return title


def _clean_description(description: str | None) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise _invalid("description", f"Must be at most {DESCRIPTION_MAX_LENGTH} characters.")
    return description


def _clean_status(status: str) -> str:
    if status not in ProductStatus.values:
        raise _invalid("status", f"Must be one of: {', '.join(ProductStatus.values)}.")
    return status


def _clean_stock(value: Any, *, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _invalid(field, f"Must be a whole number from 0 to {MAX_COUNT}, or null for unlimited.")
    return value


def validate_download_limit(value: Any, *, field: str = "download_limit") -> int | None:
    """Downloads allowed per purchase of a file: a whole number from 1 to MAX_COUNT, or None (unlimited)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise _invalid(field, f"Must be a whole number from 1 to {MAX_COUNT}, or null for unlimited downloads.")
    return value


def _clean_delivery(delivery: Mapping[str, Any], *, seller: Any) -> DeliverySettings:
    unknown = set(delivery) - set(_DELIVERY_KEYS)
    if unknown:
        name = sorted(unknown)[0]
        raise _invalid(f"delivery.{name}", "Unknown field.")
    if not delivery.get("content_type"):
        raise _invalid("delivery.content_type", "This field is required.")
    if len(delivery.get("redemption_instructions") or "") > REDEMPTION_MAX_LENGTH:
        raise _invalid("delivery.redemption_instructions", f"Must be at most {REDEMPTION_MAX_LENGTH} characters.")
    options = {key: delivery[key] for key in ("license", "partner") if delivery.get(key) is not None}
    requested = DeliverySettings(
        content_type=delivery["content_type"],
        content=delivery.get("content") or "",
        redemption_instructions=delivery.get("redemption_instructions") or "",
        options=options,
    )
    return validate_delivery(requested, seller=seller)


def _apply_delivery(product: Product, cleaned: DeliverySettings) -> None:
    product.delivery_type = cleaned.content_type
    product.delivery_content = cleaned.content
    product.redemption_instructions = cleaned.redemption_instructions
    product.delivery_options = dict(cleaned.options)


# --- Slugs ----------------------------------------------------------------------------------


def _slug_taken(slug: str, *, exclude_id: str | None = None) -> bool:
    products = Product.objects.filter(slug=slug)
    if exclude_id:
        products = products.exclude(id=exclude_id)
    return products.exists()


def _slug_from_title(title: str) -> str:
    base = re.sub(r"-{2,}", "-", slugify(title).replace("_", "-"))
    return base[:SLUG_MAX_LENGTH].strip("-") or "product"


def _unique_slug(title: str) -> str:
    """``my-ebook``, then ``my-ebook-2``, ``my-ebook-3``… always within 80 characters."""
    base = _slug_from_title(title)
    if not _slug_taken(base):
        return base
    for number in range(2, 100):
        suffix = f"-{number}"
        candidate = base[: SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix
        if not _slug_taken(candidate):
            return candidate
    suffix = "-" + random_token(40).lower()
    return base[: SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix


def _slug_conflict(slug: str) -> Conflict:
    return Conflict(
        f"The slug '{slug}' is already in use. Choose another one.",
        code="slug_taken",
        fields={"slug": ["This slug is already in use."]},
    )


# --- Variants -------------------------------------------------------------------------------


def _clean_new_variants(variants: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Variants for a new product: each needs a name and a price; names are unique per product."""
    if not variants:
        raise _invalid("variants", "Give at least one variant.")
    if len(variants) > MAX_VARIANTS:
        raise _invalid("variants", f"A product has at most {MAX_VARIANTS} variants.")
    cleaned: list[dict[str, Any]] = []
    for index, item in enumerate(variants):
        if item.get("id") is not None:
            raise _invalid(f"variants.{index}.id", "Leave `id` out: it is assigned when the variant is created.")
        cleaned.append(_clean_variant_fields(item, index=index, existing=None))
    _check_unique_names([v["name"] for v in cleaned])
    return cleaned


def _clean_variant_fields(item: Mapping[str, Any], *, index: int, existing: Variant | None) -> dict[str, Any]:
    prefix = f"variants.{index}"
    cleaned: dict[str, Any] = {}
    if "name" in item or existing is None:
        name = (item.get("name") or "").strip()
        if not name:
            raise _invalid(f"{prefix}.name", "A name is required.")
        if len(name) > VARIANT_NAME_MAX_LENGTH:
            raise _invalid(f"{prefix}.name", f"Must be at most {VARIANT_NAME_MAX_LENGTH} characters.")
        cleaned["name"] = name
    else:
        cleaned["name"] = existing.name
    if "price" in item or existing is None:
        if item.get("price") is None:
            raise _invalid(f"{prefix}.price", "A price is required.")
        cleaned["price"] = validate_amount(item["price"], field=f"{prefix}.price")
    if "stock" in item:
        cleaned["stock"] = _clean_stock(item["stock"], field=f"{prefix}.stock")
    if "delivery" in item:
        cleaned["delivery_content"] = _clean_variant_delivery(item["delivery"], field=f"{prefix}.delivery")
    return cleaned


def _clean_variant_delivery(delivery: Mapping[str, Any] | None, *, field: str) -> str:
    """A variant's own file (``{"content_type": "file", "content": <upload reference>}``); null or
    an empty ``content`` goes back to the product's file. Checked against the product in
    ``_check_variant_files`` once the product's own delivery type is known."""
    if delivery is None:
        return ""
    unknown = set(delivery) - {"content_type", "content"}
    if unknown:
        raise _invalid(f"{field}.{sorted(unknown)[0]}", "Unknown field: a variant overrides only its file.")
    content_type = delivery.get("content_type") or DeliveryType.FILE
    if content_type != DeliveryType.FILE:
        raise _invalid(f"{field}.content_type", "Only a file can be set per variant: use `file`.")
    return str(delivery.get("content") or "").strip()


def _check_variant_files(product: Product, *, seller: Any) -> None:
    """Every variant's own file is one of the seller's uploads, and only file products have them."""
    variants = Variant.objects.filter(product=product).order_by("position", "created_at", "id")
    for index, variant in enumerate(variants.only("id", "delivery_content")):
        if not variant.delivery_content:
            continue
        field = f"variants.{index}.delivery.content"
        if product.delivery_type != DeliveryType.FILE:
            raise _invalid(field, "Only a product delivered as a file can have a file per variant.")
        if not Upload.objects.filter(key=variant.delivery_content, seller=seller).exists():
            raise _invalid(field, "No upload of yours has this reference.")


def _check_unique_names(names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        key = name.casefold()
        if key in seen:
            raise _invalid(f"variants.{index}.name", "Another variant of this product already has this name.")
        seen.add(key)


def _replace_variants(product: Product, variants: Sequence[Mapping[str, Any]]) -> None:
    """``variants`` is the product's whole new list: items with an ``id`` update that variant, items
    without one create a variant, and variants left out are removed — unless orders reference
    them, which is a 409 and changes nothing."""
    if not variants:
        raise _invalid("variants", "A product needs at least one variant.")
    if len(variants) > MAX_VARIANTS:
        raise _invalid("variants", f"A product has at most {MAX_VARIANTS} variants.")
    existing = {variant.id: variant for variant in Variant.objects.select_for_update().filter(product=product)}
    plan: list[tuple[Variant | None, dict[str, Any]]] = []
    listed: set[str] = set()
    for index, item in enumerate(variants):
        variant_id = item.get("id")
        current: Variant | None = None
        if variant_id is not None:
            current = existing.get(variant_id)
            if current is None:
                raise _invalid(f"variants.{index}.id", "This product has no variant with this id.")
            if variant_id in listed:
                raise _invalid(f"variants.{index}.id", "This variant is listed twice.")
            listed.add(variant_id)
        plan.append((current, _clean_variant_fields(item, index=index, existing=current)))
    _check_unique_names([fields["name"] for _, fields in plan])

    for variant_id, variant in existing.items():
        if variant_id in listed:
            continue
        try:
            with transaction.atomic():
                variant.delete()
        except ProtectedError:
            raise Conflict(
                f"The variant '{variant.name}' ({variant.id}) has orders and cannot be removed. "
                "Keep it in `variants`; you can still rename it or change its price.",
                code="variant_has_orders",
            ) from None
    for position, (current, fields) in enumerate(plan):
        if current is None:
            Variant.objects.create(product=product, position=position, **fields)
            continue
        if current.delivery_content and fields.get("delivery_content") and product.delivery_type == DeliveryType.FILE:
            # A variant's new file reaches its earlier buyers too, as a product's new file does. (Only
            # from one own file to another: the items are found by the key they deliver, and the
            # product's own file is also what the other variants' buyers hold.)
            product_file_replaced(
                product_id=product.id, old_key=current.delivery_content, new_key=fields["delivery_content"]
            )
        for name, value in fields.items():
            setattr(current, name, value)
        current.position = position
        current.save(update_fields=[*fields, "position"])


# --- Products -------------------------------------------------------------------------------


def _reload(product: Product) -> Product:
    return Product.objects.prefetch_related("variants").get(pk=product.pk)


def product_create(
    *,
    seller: Any,
    title: str,
    currency: str,
    delivery: Mapping[str, Any],
    description: str = "",
    status: str = ProductStatus.DRAFT,
    slug: str | None = None,
    price: int | None = None,
    variants: Sequence[Mapping[str, Any]] | None = None,
    cover_image: str | None = None,
    download_limit: int | None = None,
) -> Product:
    """A product with one default variant (``price``) or several (``variants``): exactly one of the two."""
    title = _clean_title(title)
    currency = validate_currency_code(currency)
    status = _clean_status(status)
    if price is not None and variants is not None:
        raise _invalid("price", "Give either `price` or `variants`, not both.")
    if price is None and variants is None:
        raise _invalid("price", "Give a `price` (one default variant) or a list of `variants`.")
    if variants is not None:
        variant_rows = _clean_new_variants(variants)
    else:
        variant_rows = [{"name": DEFAULT_VARIANT_NAME, "price": validate_amount(price, field="price")}]
    cleaned_delivery = _clean_delivery(delivery, seller=seller)
    download_limit = validate_download_limit(download_limit)
    if slug is not None:
        validate_slug(slug)
    if slug is not None and _slug_taken(slug):
        raise _slug_conflict(slug)
    cover_key = (cover_image or "").strip()
    cover_path = cover_image_make(seller=seller, upload_key=cover_key) if cover_key else ""
    try:
        product = _product_insert(
            seller=seller,
            slug=slug,
            title=title,
            description=description,
            status=status,
            currency=currency,
            cleaned_delivery=cleaned_delivery,
            variant_rows=variant_rows,
            cover=(cover_key, cover_path),
            download_limit=download_limit,
        )
    except BaseException:
        cover_image_delete(cover_path)  # no product, no cover file
        raise
    seller_store_slug_ensure(seller)  # a seller who sells has a store
    return product


def _product_insert(
    *,
    seller: Any,
    slug: str | None,
    title: str,
    description: str,
    status: str,
    currency: str,
    cleaned_delivery: DeliverySettings,
    variant_rows: list[dict[str, Any]],
    cover: tuple[str, str],
    download_limit: int | None,
) -> Product:
    chosen_slug = ""

    for _attempt in range(3):
        chosen_slug = slug if slug is not None else _unique_slug(title)
        if slug is not None and _slug_taken(slug):
            raise _slug_conflict(slug)
        product = Product(
            seller=seller,
            slug=chosen_slug,
            title=title,
            description=_clean_description(description),
            status=status,
            currency=currency,
            cover_image=cover[0],
            cover_image_path=cover[1],
            download_limit=download_limit,
        )
        _apply_delivery(product, cleaned_delivery)
        try:
            with transaction.atomic():
                product.save(force_insert=True)
                Variant.objects.bulk_create(
                    Variant(product=product, position=position, **fields)
                    for position, fields in enumerate(variant_rows)
                )
                _check_variant_files(product, seller=seller)
        except IntegrityError:
            if not _slug_taken(chosen_slug):
                raise
            # Another request took the slug between our check and the insert.
            if slug is not None:
                raise _slug_conflict(slug) from None
            continue
        logger.info("product created", extra={"product_id": product.id, "seller_id": getattr(seller, "id", None)})
        return _reload(product)
    raise _slug_conflict(chosen_slug)


def product_update(*, product: Product, data: Mapping[str, Any]) -> Product:
    """Changes the given fields only. Keys: title, description, status, slug, currency, download_limit, delivery
    (merged into the current delivery settings), price (single-variant products) and variants (the
    whole new list, see ``_replace_variants``)."""
    if "price" in data and "variants" in data:
        raise _invalid("price", "Give either `price` or `variants`, not both.")
    new_cover: tuple[str, str] | None = None
    if "cover_image" in data:
        key = (data["cover_image"] or "").strip()
        if key != product.cover_image:
            new_cover = (key, cover_image_make(seller=product.seller, upload_key=key) if key else "")
    try:
        updated, old_cover_path = _product_update_locked(product, data, new_cover)
    except BaseException:
        cover_image_delete(new_cover[1] if new_cover else "")
        raise
    if new_cover is not None:
        transaction.on_commit(lambda: cover_image_delete(old_cover_path))
    return updated


def _product_update_locked(
    product: Product, data: Mapping[str, Any], new_cover: tuple[str, str] | None
) -> tuple[Product, str]:
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product.pk)
        old_cover_path = product.cover_image_path
        changed: list[str] = []
        if new_cover is not None:
            product.cover_image, product.cover_image_path = new_cover
            changed += ["cover_image", "cover_image_path"]
        if "title" in data:
            product.title = _clean_title(data["title"])
            changed.append("title")
        if "description" in data:
            product.description = _clean_description(data["description"])
            changed.append("description")
        if "status" in data:
            product.status = _clean_status(data["status"])
            changed.append("status")
        if "download_limit" in data:
            product.download_limit = validate_download_limit(data["download_limit"])
            changed.append("download_limit")
        if "slug" in data and data["slug"] != product.slug:
            new_slug = validate_slug(data["slug"])
            if _slug_taken(new_slug, exclude_id=product.id):
                raise _slug_conflict(new_slug)
            product.slug = new_slug
            changed.append("slug")
        if "currency" in data and data["currency"] != product.currency:
            currency = validate_currency_code(data["currency"])
            if product.orders.exists():
                raise Conflict(
                    "This product has orders; its currency can no longer change.",
                    code="currency_locked",
                    fields={"currency": ["The currency cannot change once a product has orders."]},
                )
            product.currency = currency
            changed.append("currency")
        if "delivery" in data:
            old_file = product.delivery_content if product.delivery_type == DeliveryType.FILE else ""
            _apply_delivery(
                product, _clean_delivery(_merged_delivery(product, data["delivery"]), seller=product.seller)
            )
            if product.delivery_type == DeliveryType.FILE:
                # Earlier buyers download the new file too (the order side re-points their items).
                product_file_replaced(product_id=product.id, old_key=old_file, new_key=product.delivery_content)
            changed += ["delivery_type", "delivery_content", "redemption_instructions", "delivery_options"]
        if "price" in data:
            variants = list(Variant.objects.select_for_update().filter(product=product))
            if len(variants) != 1:
                raise _invalid("price", "This product has several variants: change their prices through `variants`.")
            variants[0].price = validate_amount(data["price"], field="price")
            variants[0].save(update_fields=["price"])
        if "variants" in data:
            _replace_variants(product, data["variants"] or [])
        if "variants" in data or "delivery" in data:
            _check_variant_files(product, seller=product.seller)
        try:
            with transaction.atomic():
                product.save(update_fields=[*changed, "updated_at"])
        except IntegrityError:
            if "slug" in changed:
                raise _slug_conflict(product.slug) from None
            raise
    return _reload(product), old_cover_path


def _merged_delivery(product: Product, patch: Mapping[str, Any]) -> dict[str, Any]:
    """A partial ``delivery`` applied over the current one. Switching ``content_type`` starts from
    scratch, so the old type's content never leaks into the new one."""
    if patch.get("content_type") and patch["content_type"] != product.delivery_type:
        return dict(patch)
    options = product.delivery_options or {}
    current = {
        "content_type": product.delivery_type,
        "content": product.delivery_content,
        "redemption_instructions": product.redemption_instructions,
        "license": options.get("license"),
        "partner": options.get("partner"),
    }
    merged = {**current, **patch}
    partner, kept = patch.get("partner"), current["partner"]
    if isinstance(partner, dict) and isinstance(kept, dict) and "secret" not in partner and kept.get("secret"):
        # A new URL keeps the signing secret the seller's server verifies with (it is shown only
        # once, so it could not be sent back); ``"secret": null`` asks for a new one.
        merged["partner"] = {**partner, "secret": kept["secret"]}
    return merged


def product_archive_or_delete(*, product: Product) -> Product | None:
    """Deletes a product nobody has ordered; archives one with orders (their history must stay).
    Returns the archived product, or None when it was deleted."""
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product.pk)
        if not product.orders.exists():
            try:
                with transaction.atomic():
                    product.delete()
            except ProtectedError:
                pass  # something else (an order item, a later model) still needs it: archive instead
            else:
                logger.info("product deleted", extra={"product_id": product.pk})
                return None
        product.status = ProductStatus.ARCHIVED
        product.save(update_fields=["status", "updated_at"])
    logger.info("product archived", extra={"product_id": product.pk})
    return _reload(product)


# --- Uploads --------------------------------------------------------------------------------


def sanitize_filename(name: str) -> str:
    """A name that is safe as the last part of a storage key and in a Content-Disposition header:
    no directories, ASCII letters, digits, ``.``, ``_`` and ``-`` only, at most 120 characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", name))
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem, extension = stem.strip("._-"), extension.strip("._-")[:16]
    stem = stem or "file"
    if extension:
        return f"{stem[: FILENAME_MAX_LENGTH - len(extension) - 1]}.{extension}"
    return stem[:FILENAME_MAX_LENGTH]


def _content_type(file: UploadedFile, filename: str) -> str:
    declared = (getattr(file, "content_type", None) or "").strip().lower()
    if declared and len(declared) <= 255 and _CONTENT_TYPE_PATTERN.match(declared):
        return declared
    guessed, _encoding = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def upload_create(*, seller: Any, file: UploadedFile) -> Upload:
    """Stores the file in private storage under ``uploads/<seller>/<random>/<name>`` and records it.
    The returned ``key`` is what a product's ``delivery.content`` refers to."""
    size = file.size or 0
    max_size = settings.MAX_UPLOAD_SIZE
    if size > max_size:
        raise PayloadTooLarge(f"The file is larger than the limit of {max_size} bytes.")
    if size == 0:
        raise _invalid("file", "The file is empty.")
    filename = sanitize_filename(file.name or "")
    content_type = _content_type(file, filename)
    storage = storages["private"]
    try:
        key = storage.save(f"uploads/{seller.id}/{random_token()}/{filename}", file)
    except Exception as exc:  # noqa: BLE001 - any storage failure is the storage being unavailable to us
        logger.exception("upload to private storage failed")
        raise DependencyUnavailable("File storage is not available right now. Please try again shortly.") from exc
    try:
        with transaction.atomic():
            upload = Upload.objects.create(
                seller=seller, key=key, filename=filename, size=size, content_type=content_type
            )
    except Exception:
        storage.delete(key)  # no row, no file: never leave an orphan behind
        raise
    logger.info("upload stored", extra={"upload_id": upload.id, "seller_id": seller.id, "size": size})
    return upload
