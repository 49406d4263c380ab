from django.conf import settings
from django.db import migrations, models
from django.db.models import Q


def forwards(apps, schema_editor):
    """Fills each refund's seller from its order, and closes all but one open payment per order
    (the newest with a gateway page) so that the new constraint holds. A closed one that the buyer
    pays after all is still believed when the gateway confirms it, and refunded if the order was
    paid another way."""
    Payment = apps.get_model("payments", "Payment")
    Refund = apps.get_model("payments", "Refund")
    Order = apps.get_model("orders", "Order")
    for order_id, seller_id in Order.objects.filter(refunds__isnull=False).distinct().values_list("id", "seller_id"):
        Refund.objects.filter(order_id=order_id).update(seller_id=seller_id)
    seen: set[str] = set()
    for payment in Payment.objects.filter(status="pending").order_by("order_id", "-redirect_url", "-created_at"):
        if payment.order_id in seen:
            Payment.objects.filter(pk=payment.pk).update(
                status="cancelled", failure_reason="Closed: another payment of this order was open."
            )
        seen.add(payment.order_id)


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("orders", "0006_order_seller_status_created_index"),
        ("payments", "0003_refund_source_system"),
    ]

    operations = [
        migrations.AddField(
            model_name="refund",
            name="seller",
            field=models.ForeignKey(null=True, on_delete=models.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="refund",
            name="seller",
            field=models.ForeignKey(on_delete=models.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="refund",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.UniqueConstraint(
                condition=Q(status="pending"), fields=("order",), name="payment_one_open_per_order"
            ),
        ),
        migrations.AddConstraint(
            model_name="refund",
            constraint=models.UniqueConstraint(
                condition=Q(idempotency_key__isnull=False),
                fields=("seller", "idempotency_key"),
                name="refund_idempotency_key_per_seller",
            ),
        ),
        migrations.AddConstraint(
            model_name="refund",
            constraint=models.UniqueConstraint(
                condition=Q(source="system"), fields=("payment",), name="refund_one_automatic_per_payment"
            ),
        ),
    ]
