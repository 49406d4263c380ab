"""Re-encrypts every stored secret (codes, PINs, licence keys, sellers' webhook secrets: every
``EncryptedTextField`` of every model; and the partner signing secrets sealed inside products'
``delivery_options``) under the newest FERNET_KEYS entry.

Resumable: rows already under the newest key are skipped, so an interrupted run simply runs again.
Batched: it walks the tables by primary key, one short transaction per batch.
"""

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from catalog.delivery import seal_partner_secret
from catalog.models import DeliveryType, Product
from marketplace.core.crypto import EncryptedTextField, is_under_newest_key, rotate


def encrypted_tables() -> list[tuple[str, list[str]]]:
    """Every table with Fernet-encrypted columns, found from the models so that none is forgotten."""
    tables = []
    for model in apps.get_models():
        columns = [f.column for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if columns:
            tables.append((model._meta.db_table, columns))
    return sorted(tables)


class Command(BaseCommand):
    help = "Re-encrypt codes, PINs, licence keys and webhook secrets under the newest Fernet key (resumable, batched)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        total = 0
        for table, columns in encrypted_tables():
            total += self._rotate_table(table, columns, batch_size)
        total += self._rotate_partner_secrets()
        self.stdout.write(f"rotated {total} row(s) to the newest key")

    def _rotate_partner_secrets(self) -> int:
        """Sealed partner secrets live in a JSON field, so no column type finds them; a plain
        ``whsec_`` one (from before they were sealed) is sealed now."""
        rotated = 0
        for product in Product.objects.filter(delivery_type=DeliveryType.PARTNER_API).only("id", "delivery_options"):
            with transaction.atomic():
                locked = Product.objects.select_for_update().only("id", "delivery_options").get(pk=product.pk)
                partner = dict((locked.delivery_options or {}).get("partner") or {})
                stored = str(partner.get("secret") or "")
                if not stored or (not stored.startswith("whsec_") and is_under_newest_key(stored)):
                    continue
                partner["secret"] = seal_partner_secret(stored) if stored.startswith("whsec_") else rotate(stored)
                Product.objects.filter(pk=locked.pk).update(
                    delivery_options={**(locked.delivery_options or {}), "partner": partner}
                )
                rotated += 1
        return rotated

    def _rotate_table(self, table: str, columns: list[str], batch_size: int) -> int:
        quote = connection.ops.quote_name
        column_list = ", ".join(quote(c) for c in columns)
        last_id: Any = None  # ids are text (``cod_…``) in most tables and integers in others
        rotated = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                after, params = ("WHERE id > %s ", [last_id]) if last_id is not None else ("", [])
                cursor.execute(
                    f"SELECT id, {column_list} FROM {quote(table)} {after}ORDER BY id LIMIT %s",  # noqa: S608
                    [*params, batch_size],
                )
                rows = cursor.fetchall()
                if not rows:
                    return rotated
                for row in rows:
                    row_id, values = row[0], row[1:]
                    if all(v is None or is_under_newest_key(v) for v in values):
                        continue
                    new_values = [None if v is None else rotate(v) for v in values]
                    assignments = ", ".join(f"{quote(c)} = %s" for c in columns)
                    cursor.execute(
                        f"UPDATE {quote(table)} SET {assignments} WHERE id = %s",  # noqa: S608
                        [*new_values, row_id],
                    )
                    rotated += 1
                last_id = rows[-1][0]
            self.stdout.write(f"{table}: up to {last_id}, {rotated} rotated", ending="\r")
