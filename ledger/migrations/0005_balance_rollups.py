"""The balance rollup (``ledger.rollups``): per seller, account, currency and UTC day of ``available_on``
the seller lines' sum, count and earliest ``available_on``, filled here from the lines already written.
A cache of the lines, never the truth: ``ledger_check`` compares them, ``ledger_rebuild_rollups`` rebuilds it."""

from datetime import UTC

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models




def fill(apps, schema_editor):
    from django.db.models import Count, Min, Sum
    from django.db.models.functions import TruncDate

    LedgerLine = apps.get_model("ledger", "LedgerLine")
    BalanceRollup = apps.get_model("ledger", "BalanceRollup")
    rows = (
        LedgerLine.objects.filter(account__in=["seller_balance", "seller_reserved"])
        .annotate(day=TruncDate("available_on", tzinfo=UTC))
        .values("seller_id", "account", "currency", "day")
        .annotate(amount=Sum("amount"), lines=Count("id"), first_available_on=Min("available_on"))
        .order_by()
    )
    batch = []
    for row in rows.iterator():
        batch.append(BalanceRollup(**row))
        if len(batch) == 5000:
            BalanceRollup.objects.bulk_create(batch)
            batch = []
    BalanceRollup.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0004_operator_adjustments'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='BalanceRollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('account', models.CharField(choices=[('seller_balance', 'Seller balance (pending until available_on, then available)'), ('seller_reserved', 'Seller reserved'), ('platform_fees', 'Platform fees'), ('gateway_clearing', 'Gateway clearing'), ('payouts_in_transit', 'Payouts in transit')], max_length=20)),
                ('currency', models.CharField(max_length=3)),
                ('day', models.DateField(help_text="The UTC date of the lines' available_on.")),
                ('amount', models.BigIntegerField()),
                ('lines', models.PositiveIntegerField()),
                ('first_available_on', models.DateTimeField()),
                ('seller', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('seller', 'account', 'currency', 'day'), name='ledger_rollup_key')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
