"""Cover images: a seller's upload, checked and resized with Pillow, stored in public storage.

The seller uploads the picture like any file (``POST /uploads``, private storage) and names it as
the product's ``cover_image``. That upload is opened here: it must be a JPEG, PNG, GIF or WebP of at
most ``COVER_MAX_BYTES`` and ``COVER_MAX_PIXELS`` (the pixel count is read from the header before
any decoding, so a small file that decompresses to gigabytes is refused unread). It is turned
upright (EXIF), flattened to RGB, fitted into ``COVER_MAX_SIDE`` and re-encoded as JPEG — a fresh
file, so nothing hidden in the original (metadata, trailing bytes) reaches the public copy."""

import io
import logging
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from PIL import Image, ImageOps, UnidentifiedImageError

from marketplace.core.errors import DependencyUnavailable, PayloadTooLarge, ValidationFailed
from marketplace.core.ids import random_token

from .models import Upload

logger = logging.getLogger(__name__)

COVER_MAX_BYTES = 10 * 1024 * 1024
COVER_MAX_PIXELS = 40_000_000  # e.g. 8000 × 5000
COVER_MAX_SIDE = 1280
COVER_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP"})
COVER_QUALITY = 85


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(f"cover_image: {message}", fields={"cover_image": [message]})


def public_storage() -> Any:
    return storages["default"]


def cover_image_url(path: str) -> str:
    """The public URL of a stored cover ('' when the product has none)."""
    if not path:
        return ""
    return str(public_storage().url(path))


def cover_image_make(*, seller: Any, upload_key: str) -> str:
    """Makes the public cover from the seller's upload ``upload_key``; returns its storage path."""
    upload = Upload.objects.filter(seller=seller, key=upload_key).first()
    if upload is None:
        raise _invalid("No upload of yours has this reference: upload the picture first (POST /api/v1/uploads).")
    if upload.size > COVER_MAX_BYTES:
        raise PayloadTooLarge(
            f"The cover image is {upload.size} bytes; at most {COVER_MAX_BYTES} bytes are allowed.",
            fields={"cover_image": [f"At most {COVER_MAX_BYTES // (1024 * 1024)} MB."]},
        )
    try:
        with storages["private"].open(upload.key, "rb") as handle:
            raw = handle.read(COVER_MAX_BYTES + 1)
    except FileNotFoundError:
        raise _invalid("The uploaded file is missing; upload it again.") from None
    except Exception as exc:  # noqa: BLE001 - any storage failure is the storage being unavailable
        logger.exception("reading a cover upload failed")
        raise DependencyUnavailable("File storage is not available right now. Please try again shortly.") from exc
    resized = _resized_jpeg(raw)
    path = f"covers/{seller.id}/{random_token()}.jpg"
    try:
        return str(public_storage().save(path, ContentFile(resized)))
    except Exception as exc:  # noqa: BLE001
        logger.exception("storing a cover image failed")
        raise DependencyUnavailable("File storage is not available right now. Please try again shortly.") from exc


def _resized_jpeg(raw: bytes) -> bytes:
    not_an_image = "This file is not a picture: upload a JPEG, PNG, GIF or WebP image."
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            image_format = probe.format
            width, height = probe.size
    except Image.DecompressionBombError:
        raise _invalid(f"The picture is too large: at most {COVER_MAX_PIXELS // 1_000_000} megapixels.") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise _invalid(not_an_image) from None
    if image_format not in COVER_FORMATS:
        raise _invalid(not_an_image)
    if width * height > COVER_MAX_PIXELS:
        raise _invalid(
            f"The picture is {width}×{height} pixels; at most {COVER_MAX_PIXELS // 1_000_000} megapixels are allowed."
        )
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            if upright.mode in ("RGBA", "LA", "P"):
                rgba = upright.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
            else:
                flat = upright.convert("RGB")
            flat.thumbnail((COVER_MAX_SIDE, COVER_MAX_SIDE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            flat.save(out, format="JPEG", quality=COVER_QUALITY, optimize=True)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise _invalid("This picture is damaged and cannot be read.") from None
    return out.getvalue()


def cover_image_delete(path: str) -> None:
    """Removes a cover that no product shows any more (after its replacement is committed)."""
    if not path:
        return
    try:
        public_storage().delete(path)
    except Exception:  # noqa: BLE001 - a leftover file is harmless; never fail the seller's save for it
        logger.warning("could not delete an old cover image", exc_info=True)
