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
from orders.webhooks import order_urls_endpoint


def test_it_covers_every_encrypted_column() -> None:
    from catalog.management.commands.rotate_code_keys import encrypted_tables

    assert encrypted_tables() == [
        ("catalog_code", ["code", "pin"]),
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
