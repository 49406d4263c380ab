"""Idempotency keys per seller (the public checkout) or per caller (``POST /api/v1/orders``), no longer
per product: the same key on two of one seller's products is one order."""

from typing import Any

from django.conf import settings
from django.db import migrations, models


def keep_old_duplicates_apart(apps: Any, schema_editor: Any) -> None:
    """Orders made before this change may share a key across one seller's products (they were unique
    per product). The oldest keeps the seller-wide scope; each later one gets its product's id as its
    scope, so every old key still replays the order it made and the new index can be built."""
    Order = apps.get_model("orders", "Order")
    seen: set[tuple[str, str]] = set()
    rows = (
        Order.objects.filter(idempotency_key__isnull=False)
        .order_by("seller_id", "idempotency_key", "created_at", "id")
        .values_list("id", "seller_id", "idempotency_key", "product_id")
    )
    for order_id, seller_id, key, product_id in rows.iterator():
        if (seller_id, key) in seen:
            Order.objects.filter(pk=order_id).update(idempotency_scope=product_id)
        else:
            seen.add((seller_id, key))


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0007_code_pool_fifo_index"),
        ("orders", "0007_order_access_suspended"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="order",
            name="order_idempotency_key_per_product",
        ),
        migrations.AddField(
            model_name="order",
            name="idempotency_scope",
            field=models.CharField(blank=True, default="", max_length=40),
        ),
        migrations.RunPython(keep_old_duplicates_apart, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(
                condition=models.Q(("idempotency_key__isnull", False)),
                fields=("seller", "idempotency_scope", "idempotency_key"),
                name="order_idempotency_key_per_seller_scope",
            ),
        ),
    ]
