"""Partner signing secrets were stored as plain ``whsec_`` text inside ``delivery_options``; they are
sealed with Fernet now, like every other secret at rest. Reversible (unseals)."""

from django.db import migrations


def seal(apps, schema_editor):
    from marketplace.core.crypto import encrypt

    Product = apps.get_model("catalog", "Product")
    for product in Product.objects.filter(delivery_type="partner_api").only("id", "delivery_options"):
        partner = dict((product.delivery_options or {}).get("partner") or {})
        secret = str(partner.get("secret") or "")
        if secret.startswith("whsec_"):
            partner["secret"] = encrypt(secret)
            Product.objects.filter(pk=product.pk).update(delivery_options={**product.delivery_options, "partner": partner})


def unseal(apps, schema_editor):
    from marketplace.core.crypto import decrypt

    Product = apps.get_model("catalog", "Product")
    for product in Product.objects.filter(delivery_type="partner_api").only("id", "delivery_options"):
        partner = dict((product.delivery_options or {}).get("partner") or {})
        secret = str(partner.get("secret") or "")
        if secret and not secret.startswith("whsec_"):
            partner["secret"] = decrypt(secret)
            Product.objects.filter(pk=product.pk).update(delivery_options={**product.delivery_options, "partner": partner})


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_product_download_limit")]

    operations = [migrations.RunPython(seal, unseal)]
