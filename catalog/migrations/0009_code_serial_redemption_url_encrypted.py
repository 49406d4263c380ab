"""Codes' serial numbers were stored as plain text; they are Fernet-encrypted now, like the codes and
PINs (an empty serial becomes NULL). Codes also get an encrypted ``redemption_url``. Existing rows
are encrypted here, in batches, with raw SQL (the model of this state would decrypt on read).
Reversible: the serials are decrypted back."""

from django.db import migrations

import marketplace.core.crypto

BATCH = 1000


def _walk(schema_editor, transform):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    last_id = ""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, serial FROM {quote('catalog_code')} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
                [last_id, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            for row_id, serial in rows:
                new = transform(serial)
                if new != serial:
                    cursor.execute(f"UPDATE {quote('catalog_code')} SET serial = %s WHERE id = %s", [new, row_id])  # noqa: S608
            last_id = rows[-1][0]


def encrypt_serials(apps, schema_editor):
    from marketplace.core.crypto import encrypt

    _walk(schema_editor, lambda serial: encrypt(serial) if serial else None)


def decrypt_serials(apps, schema_editor):
    from marketplace.core.crypto import decrypt

    _walk(schema_editor, lambda serial: decrypt(serial)[:120] if serial else "")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0008_product_pages_cover_featured_variant_files")]

    operations = [
        migrations.AlterField(
            model_name="code",
            name="serial",
            field=marketplace.core.crypto.EncryptedTextField(blank=True, null=True),
        ),
        migrations.RunPython(encrypt_serials, decrypt_serials),
        migrations.AddField(
            model_name="code",
            name="redemption_url",
            field=marketplace.core.crypto.EncryptedTextField(blank=True, null=True),
        ),
    ]
