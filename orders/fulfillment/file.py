from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core import signing
from django.core.files.storage import FileSystemStorage, storages
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from marketplace.core.errors import Gone
from orders.models import OrderItem

from .base import DeliveryStrategy, PermanentDeliveryError, Resource, TransientDeliveryError

DOWNLOAD_SALT = "orders.download"


def private_storage() -> Any:
    return storages["private"]


def signed_download_url(key: str, filename: str, *, item_id: str) -> tuple[str, Any]:
    """A link to the file that stops working after ``DOWNLOAD_LINK_TTL_SECONDS`` (24 hours by default).

    S3 (and Backblaze B2) sign the link themselves and serve the file: it never streams through
    Django there. Local storage gets a link to our own download view carrying a signed, timestamped
    token that names the order item, so that the view refuses it once the order is refunded.
    """
    ttl = django_settings.DOWNLOAD_LINK_TTL_SECONDS
    expires_at = timezone.now() + timedelta(seconds=ttl)
    storage = private_storage()
    if isinstance(storage, FileSystemStorage):
        token = signing.dumps({"k": key, "f": filename, "i": item_id}, salt=DOWNLOAD_SALT, compress=True)
        return django_settings.SITE_URL + reverse("checkout:download", args=[token]), expires_at
    url = storage.url(
        key,
        parameters={"ResponseContentDisposition": f'attachment; filename="{filename}"'},
        expire=ttl,
    )
    return url, expires_at


def unsign_download_token(token: str) -> dict[str, str]:
    return signing.loads(token, salt=DOWNLOAD_SALT, max_age=django_settings.DOWNLOAD_LINK_TTL_SECONDS)


class FileDelivery(DeliveryStrategy):
    """A file the seller uploaded to private storage, downloaded through short-lived signed links."""

    content_type = "file"

    def fulfill(self, item: Any) -> None:
        try:
            exists = private_storage().exists(item.delivery_content)
        except Exception as exc:  # noqa: BLE001 - storage outages are worth a retry
            raise TransientDeliveryError(f"Storage did not answer: {exc}") from exc
        if not exists:
            raise PermanentDeliveryError("The product's file is missing from storage.", status="dispatch_failed")

    def _filename(self, item: Any) -> str:
        # Uploads are stored as uploads/<seller>/<token>/<filename>: the name needs no query.
        return str(item.delivery_content).rsplit("/", 1)[-1]

    def delivery_view(self, item: Any) -> dict[str, Any]:
        download = (
            django_settings.SITE_URL + reverse("orders-api:order-resource", args=[item.order_id]) + f"?item={item.id}"
        )
        return {
            "content_type": "file",
            "content": self._filename(item),
            "download_url": download,
            "expires_at": None,
            "redemption_instructions": item.redemption_instructions or None,
        }

    def resource(self, item: Any, *, request: Any) -> Resource:
        download_count_take(item)
        url, expires_at = signed_download_url(item.delivery_content, self._filename(item), item_id=item.id)
        return Resource(redirect_url=url, body={"expires_at": expires_at})


def items_follow_replaced_file(*, product_id: str, old_key: str, new_key: str) -> int:
    """The seller uploaded a new file to the product: every item that delivered the old one now
    delivers the new one (the library, the success page and the emailed link serve it; a
    download link signed before names the old key and keeps working until it expires). Items whose
    file was changed on their own (a per-item override) name another key and are left alone.
    One UPDATE, in the caller's transaction (``catalog.ports.product_file_replaced``)."""
    return OrderItem.objects.filter(product_id=product_id, content_type="file", delivery_content=old_key).update(
        delivery_content=new_key
    )


def download_limit_for(item: Any) -> int | None:
    """The product's ``download_limit`` (None: unlimited), read when the buyer downloads."""
    return getattr(item.product, "download_limit", None)


def download_count_take(item: Any) -> int:
    """Counts one download of the item, atomically (``F()``, one UPDATE), and returns the new count.

    Each fresh signed link counts as one download: on S3 the file never passes through Django, so
    issuing the link is the only moment we see. Over the product's limit → 410 ``download_limit_reached``.
    """
    limit = download_limit_for(item)
    rows = OrderItem.objects.filter(pk=item.pk)
    if limit is not None:
        rows = rows.filter(download_count__lt=limit)
    if not rows.update(download_count=F("download_count") + 1):
        raise Gone(
            f"This file has already been downloaded {limit} time(s), the most this product allows. "
            "Contact the seller if you need it again.",
            code="download_limit_reached",
        )
    item.download_count = OrderItem.objects.values_list("download_count", flat=True).get(pk=item.pk)
    return int(item.download_count)
