"""``manage.py rotate_code_keys`` re-encrypts every encrypted column, sellers' webhook secrets too,
so that the old Fernet key can be removed afterwards."""

import io
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from marketplace.accounts.tests.factories import SellerFactory
from marketplace.core.crypto import UndecryptableValue, is_under_newest_key
from orders.models import WebhookEndpoint
from orders.seller_events.endpoints import order_urls_endpoint


def test_it_covers_every_encrypted_column() -> None:
    from catalog.management.commands.rotate_code_keys import encrypted_tables

    assert encrypted_tables() == [
        ("catalog_code", ["code", "pin", "serial", "redemption_url"]),
        ("ledger_payoutsettings", ["bank_number"]),  # sellers' bank account numbers rotate too
        ("orders_license", ["key"]),
        ("orders_webhookendpoint", ["secret"]),
    ]


@pytest.mark.django_db
def test_webhook_secrets_survive_removing_the_old_key(settings: Any) -> None:
    old = settings.FERNET_KEYS[0]
    seller = SellerFactory()
    endpoint = WebhookEndpoint.objects.create(seller=seller, url="https://hooks.example.com/in", secret="whsec_b2xk")
    order_urls = order_urls_endpoint(seller_id=seller.pk)
    secrets_before = {endpoint.id: "whsec_b2xk", order_urls.id: order_urls.secret}
    new = Fernet.generate_key().decode()

    settings.FERNET_KEYS = [new]  # without rotation, the old key's rows are lost
    with pytest.raises(UndecryptableValue):
        WebhookEndpoint.objects.get(pk=endpoint.pk)

    settings.FERNET_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_code_keys", stdout=out)
    assert "rotated 2 row(s)" in out.getvalue()

    settings.FERNET_KEYS = [new]
    assert {e.id: e.secret for e in WebhookEndpoint.objects.all()} == secrets_before
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM orders_webhookendpoint")
        assert all(is_under_newest_key(secret) for (secret,) in cursor.fetchall())


@pytest.mark.django_db
def test_partner_secrets_are_rotated_and_plain_ones_sealed(settings: Any) -> None:
    from catalog.delivery import partner_secret, seal_partner_secret
    from catalog.models import Product
    from catalog.tests.factories import ProductFactory

    old = settings.FERNET_KEYS[0]
    sealed = ProductFactory(
        delivery_type="partner_api",
        delivery_content="",
        delivery_options={"partner": {"url": "https://p.example/a", "secret": seal_partner_secret("whsec_c2VhbGVk")}},
    )
    plain = ProductFactory(  # written before secrets were sealed
        delivery_type="partner_api",
        delivery_content="",
        delivery_options={"partner": {"url": "https://p.example/b", "secret": "whsec_cGxhaW4"}},
    )
    new = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_code_keys", stdout=out)
    assert "rotated 2 row(s)" in out.getvalue()

    settings.FERNET_KEYS = [new]  # the old key removed
    stored = {p.pk: p.delivery_options["partner"]["secret"] for p in Product.objects.all()}
    assert all(is_under_newest_key(value) for value in stored.values())
    assert partner_secret(Product.objects.get(pk=sealed.pk).delivery_options) == "whsec_c2VhbGVk"
    assert partner_secret(Product.objects.get(pk=plain.pk).delivery_options) == "whsec_cGxhaW4"

    again = io.StringIO()
    call_command("rotate_code_keys", stdout=again)
    assert "rotated 0 row(s)" in again.getvalue()


@pytest.mark.django_db
def test_the_migration_seals_plain_partner_secrets_and_its_reverse_unseals() -> None:
    import importlib

    from django.apps import apps as django_apps

    from catalog.delivery import partner_secret
    from catalog.models import Product
    from catalog.tests.factories import ProductFactory

    migration = importlib.import_module("catalog.migrations.0006_seal_partner_secrets")
    product = ProductFactory(
        delivery_type="partner_api",
        delivery_content="",
        delivery_options={"partner": {"url": "https://p.example/a", "secret": "whsec_b2xkLXBsYWlu"}},
    )
    migration.seal(django_apps, None)
    sealed = Product.objects.get(pk=product.pk).delivery_options["partner"]
    assert sealed["url"] == "https://p.example/a"
    assert "b2xkLXBsYWlu" not in sealed["secret"]
    assert partner_secret({"partner": sealed}) == "whsec_b2xkLXBsYWlu"

    migration.seal(django_apps, None)  # running twice changes nothing
    assert Product.objects.get(pk=product.pk).delivery_options["partner"] == sealed
    migration.unseal(django_apps, None)
    assert Product.objects.get(pk=product.pk).delivery_options["partner"]["secret"] == "whsec_b2xkLXBsYWlu"


@pytest.mark.django_db
def test_serials_and_redemption_urls_survive_removing_the_old_key(settings: Any) -> None:
    from catalog.inventory import CodeRow, codes_import
    from catalog.models import Code
    from catalog.tests.factories import ProductFactory, VariantFactory

    old = settings.FERNET_KEYS[0]
    variant = VariantFactory(product=ProductFactory(delivery_type="code_pool", delivery_content=""))
    codes_import(
        variant=variant,
        rows=[CodeRow(1, "ROT-0001", serial="SN-77", redemption_url="https://r.example/1"), CodeRow(2, "ROT-0002")],
    )
    new = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new, old]
    call_command("rotate_code_keys", stdout=io.StringIO())
    settings.FERNET_KEYS = [new]
    stored = {c.code: (c.serial, c.redemption_url) for c in Code.objects.all()}
    assert stored == {"ROT-0001": ("SN-77", "https://r.example/1"), "ROT-0002": (None, None)}
    with connection.cursor() as cursor:
        cursor.execute("SELECT serial, redemption_url FROM catalog_code WHERE serial IS NOT NULL")
        assert all(is_under_newest_key(a) and is_under_newest_key(b) for a, b in cursor.fetchall())


@pytest.mark.django_db
def test_the_migration_encrypts_existing_plain_serials() -> None:
    import importlib
    from types import SimpleNamespace

    from catalog.inventory import CodeRow, codes_import
    from catalog.models import Code
    from catalog.tests.factories import ProductFactory, VariantFactory

    migration = importlib.import_module("catalog.migrations.0009_code_serial_redemption_url_encrypted")
    variant = VariantFactory(product=ProductFactory(delivery_type="code_pool", delivery_content=""))
    codes_import(variant=variant, rows=[CodeRow(1, "MIG-0001"), CodeRow(2, "MIG-0002")])
    first, second = Code.objects.order_by("created_at", "id")
    with connection.cursor() as cursor:  # as rows were before: plain serials, empty for none
        cursor.execute("UPDATE catalog_code SET serial = %s WHERE id = %s", ["PLAIN-SN-1", first.id])
        cursor.execute("UPDATE catalog_code SET serial = %s WHERE id = %s", ["", second.id])
    migration.encrypt_serials(None, SimpleNamespace(connection=connection))  # it uses the editor's connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, serial FROM catalog_code ORDER BY created_at, id")
        raw = dict(cursor.fetchall())
    assert raw[first.id].startswith("gAAAA") and "PLAIN" not in raw[first.id]
    assert raw[second.id] is None
    assert Code.objects.get(pk=first.pk).serial == "PLAIN-SN-1"
