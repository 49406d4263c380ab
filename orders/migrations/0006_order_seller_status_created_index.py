"""The seller's order list filtered by status and dates: (seller, status, created_at) replaces
(seller, status), which it also serves; it is built before the old one is dropped."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_product_download_limit"),
        ("orders", "0005_webhook_endpoints_and_deliveries"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["seller", "status", "created_at"], name="orders_orde_seller__675e6d_idx"),
        ),
        migrations.RemoveIndex(
            model_name="order",
            name="orders_orde_seller__c90b9c_idx",
        ),
    ]
