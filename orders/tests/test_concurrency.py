"""Real concurrent transactions (not one test transaction, which would hide the locking)."""

import threading
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from catalog.tests.factories import ProductFactory, VariantFactory
from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


def run_concurrently(count, func):
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        try:
            barrier.wait(timeout=10)
            results[index] = func(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_requests_with_one_key_make_one_order(seller):
    product = ProductFactory(seller=seller)
    VariantFactory(product=product, price=500)
    body = {"buyer_email": "race@example.com", "quantity": 1}

    def pay(_):
        response = APIClient().post(
            f"/api/v1/public/checkout/{product.slug}/pay", body, format="json", HTTP_IDEMPOTENCY_KEY="race-key"
        )
        return response.status_code, response.json()["data"]["id"]

    results = run_concurrently(6, pay)
    assert Order.objects.filter(product=product).count() == 1
    statuses = Counter(status for status, _ in results)
    assert statuses == Counter({201: 1, 200: 5})
    assert len({order_id for _, order_id in results}) == 1


def test_concurrent_buyers_never_oversell(seller):
    product = ProductFactory(seller=seller)
    variant = VariantFactory(product=product, price=500, stock=3)

    def pay(index):
        response = APIClient().post(
            f"/api/v1/public/checkout/{product.slug}/pay", {"buyer_email": f"b{index}@example.com"}, format="json"
        )
        return response.status_code

    results = run_concurrently(8, pay)
    assert Counter(results) == Counter({201: 3, 409: 5})
    variant.refresh_from_db()
    assert variant.stock == 0
    assert Order.objects.filter(product=product).count() == 3
