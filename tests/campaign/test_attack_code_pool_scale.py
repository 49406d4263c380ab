"""A big code pool must not make a checkout slower: issue 11, "code allocation without counting the
pool", and "code import with COPY".

A reservation takes ``quantity`` codes with ``FOR UPDATE SKIP LOCKED ... LIMIT quantity`` and decides
from how many it got; nothing on a buyer's path (the checkout page, the quote, ``pay`` and its
refusal) counts the pool; the counts people see (a product's ``stock``) are read from the pool's
index. Every query is held here by its SQL or its plan, which do not depend on the pool's size.
"""

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.inventory import CodeRow, available_codes, codes_import
from catalog.models import Code, CodeStatus, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory
from orders.models import Order, OrderItem, SellerEvent

from .world import jwt_client

pytestmark = pytest.mark.django_db

SLUG = "big-gift-card"


@pytest.fixture
def pool() -> Any:
    product = ProductFactory(
        seller=SellerFactory(name="Gift Shop"),
        slug=SLUG,
        title="Gift Card",
        delivery_type=DeliveryType.CODE_POOL,
        delivery_content="",
    )
    return VariantFactory(product=product, name="$25", price=2500)


def load(variant: Any, n: int, prefix: str = "POOL") -> None:
    result = codes_import(variant=variant, rows=[CodeRow(i, f"{prefix}-{i:05d}-XY") for i in range(1, n + 1)])
    assert result.imported == n


def pool_counts(sql_log: CaptureQueriesContext) -> list[str]:
    """The statements that count codes without a LIMIT: a scan of the whole pool at any size."""
    counted = []
    for query in sql_log.captured_queries:
        sql = query["sql"].upper()
        if '"CATALOG_CODE"' in sql and "COUNT(" in sql and "LIMIT" not in sql:
            counted.append(query["sql"])
    return counted


def code_states(variant: Any) -> list[tuple[str, str, Any]]:
    return list(Code.objects.filter(variant=variant).order_by("id").values_list("id", "status", "order_item_id"))


class TestACheckoutNeverCountsThePool:
    def test_pay_takes_its_codes_without_a_count(self, pool):
        load(pool, 3)
        with CaptureQueriesContext(connection) as sql_log:
            response = APIClient().post(
                f"/api/v1/public/checkout/{SLUG}/pay", {"buyer_email": "a@b.co", "quantity": 2}, format="json"
            )
        assert response.status_code == 201, response.content
        assert pool_counts(sql_log) == []
        item = OrderItem.objects.get()
        assert Code.objects.filter(order_item=item, status=CodeStatus.ALLOCATED).count() == 2
        assert Code.objects.filter(variant=pool, status=CodeStatus.AVAILABLE).count() == 1

    def test_asking_more_than_is_left_is_409_from_the_codes_it_got_and_changes_nothing(self, pool):
        load(pool, 1)
        before = code_states(pool)
        with CaptureQueriesContext(connection) as sql_log:
            response = APIClient().post(
                f"/api/v1/public/checkout/{SLUG}/pay", {"buyer_email": "a@b.co", "quantity": 2}, format="json"
            )
        assert response.status_code == 409
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "out_of_stock"
        assert body["error"]["message"] == "Only 1 left of $25."
        assert pool_counts(sql_log) == []
        assert Order.objects.count() == 0
        assert OrderItem.objects.count() == 0
        assert SellerEvent.objects.count() == 0
        assert code_states(pool) == before

    def test_an_empty_pool_is_sold_out_and_the_last_sale_says_so_once(self, pool):
        load(pool, 1)
        first = APIClient().post(f"/api/v1/public/checkout/{SLUG}/pay", {"buyer_email": "a@b.co"}, format="json")
        assert first.status_code == 201
        assert SellerEvent.objects.filter(type="product.out_of_stock").count() == 1
        with CaptureQueriesContext(connection) as sql_log:
            second = APIClient().post(f"/api/v1/public/checkout/{SLUG}/pay", {"buyer_email": "c@d.co"}, format="json")
        assert second.status_code == 409
        assert second.json()["error"]["message"] == "$25 is sold out."
        assert pool_counts(sql_log) == []
        assert Order.objects.count() == 1
        assert SellerEvent.objects.filter(type="product.out_of_stock").count() == 1

    def test_the_checkout_page_probes_instead_of_counting(self, pool, client):
        load(pool, 3)
        bigger = VariantFactory(product=pool.product, name="$50", price=5000)
        load(bigger, 9, prefix="BIG")  # more than the page names: no badge
        with CaptureQueriesContext(connection) as sql_log:
            page = client.get(f"/c/{SLUG}")
        assert page.status_code == 200
        assert pool_counts(sql_log) == []
        html = page.content.decode()
        assert re.findall(r'<span class="badge[^"]*">([^<]*)</span>', html) == ["3 left"]
        Code.objects.filter(variant=pool).update(status=CodeStatus.BLOCKED)
        html = client.get(f"/c/{SLUG}").content.decode()
        assert re.findall(r'<span class="badge[^"]*">([^<]*)</span>', html) == ["Sold out"]

    def test_the_quote_refuses_more_than_is_left_like_pay_with_a_probe(self, pool):
        load(pool, 1)
        before = code_states(pool)
        url = f"/api/v1/public/checkout/{SLUG}/quote"
        with CaptureQueriesContext(connection) as sql_log:
            refused = APIClient().post(url, {"variant_id": pool.id, "quantity": 2}, format="json")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "out_of_stock"
        assert refused.json()["error"]["message"] == "Only 1 left of $25."
        assert pool_counts(sql_log) == []
        assert code_states(pool) == before
        assert Order.objects.count() == 0
        fine = APIClient().post(url, {"variant_id": pool.id, "quantity": 1}, format="json")
        assert fine.status_code == 200
        assert fine.json()["data"]["total_amount"] == 2500

    def test_the_page_quote_button_shows_the_shortage_on_the_form(self, pool, client):
        load(pool, 1)
        response = client.post(
            f"/c/{SLUG}", {"action": "quote", "buyer_email": "a@b.co", "quantity": 3, "variant_id": pool.id}
        )
        assert response.status_code == 400
        assert "Only 1 left of $25." in response.content.decode()
        assert Order.objects.count() == 0

    def test_counts_people_see_leave_out_sold_blocked_and_expired_codes(self, pool):
        load(pool, 5)
        codes = list(Code.objects.filter(variant=pool).order_by("created_at", "id"))
        Code.objects.filter(id=codes[0].id).update(status=CodeStatus.BLOCKED)
        Code.objects.filter(id=codes[1].id).update(expires_at=timezone.now() - timedelta(minutes=1))
        Code.objects.filter(id=codes[2].id).update(expires_at=timezone.now() + timedelta(days=1))
        APIClient().post(f"/api/v1/public/checkout/{SLUG}/pay", {"buyer_email": "a@b.co"}, format="json")
        seller_view = jwt_client(pool.product.seller).get(f"/api/v1/products/{pool.product_id}")
        assert seller_view.json()["data"]["variants"][0]["stock"] == 2
        listed = jwt_client(pool.product.seller).get("/api/v1/products")
        assert listed.json()["data"]["results"][0]["variants"][0]["stock"] == 2
        public = APIClient().get(f"/api/v1/public/checkout/{SLUG}").json()["data"]
        assert (public["variants"][0]["stock"], public["variants"][0]["available"]) == (2, True)


def _plan(sql: str, params: Any) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a test pool is tiny: ask what a big one gets
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


class TestThePoolsIndexServesEveryRead:
    def test_the_reservation_reads_the_oldest_codes_in_index_order_with_no_sort(self, pool):
        load(pool, 5)
        query = (
            available_codes(pool.id)
            .order_by("created_at", "id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:2]
        )
        plan = _plan(*query.query.sql_with_params())
        assert "code_pool_fifo" in plan
        assert "Sort" not in plan  # PostgreSQL: no sort (nor incremental sort) of the pool
        assert "TEMP B-TREE" not in plan  # SQLite: the same

    def test_the_stock_count_reads_the_index(self, pool):
        load(pool, 5)
        plan = _plan(*available_codes(pool.id).values("id").query.sql_with_params())
        assert "code_pool_fifo" in plan
        if connection.vendor == "postgresql":
            assert "Index Only Scan" in plan  # expires_at is carried in the index: no table rows read


def test_oldest_codes_go_first(pool):
    load(pool, 3)
    APIClient().post(f"/api/v1/public/checkout/{SLUG}/pay", {"buyer_email": "a@b.co"}, format="json")
    taken = Code.objects.get(status=CodeStatus.ALLOCATED)
    assert taken.code == "POOL-00001-XY"


# --- Import: COPY of rows encrypted in batches (PostgreSQL), the same account everywhere ------------------


def test_ids_made_in_a_batch_are_ids_like_make_ids_and_all_different():
    from marketplace.core.ids import make_ids

    ids = make_ids("cod", 5000)
    assert len(set(ids)) == 5000
    assert all(re.fullmatch(r"cod_[0-9A-Za-z]{22}", value) for value in ids)
    # Every character of the alphabet turns up at about the same rate (a skew would shrink the 128 bits).
    counts: dict[str, int] = {}
    for value in ids:
        for char in value[4:]:
            counts[char] = counts.get(char, 0) + 1
    assert len(counts) == 62
    assert max(counts.values()) < 2 * min(counts.values())


def test_hashes_and_tokens_made_in_a_batch_are_those_made_one_by_one(settings):
    from marketplace.core import crypto

    values = ["GC-0001", "gc-0001", "ü\\x", "A" * 500]
    assert crypto.blind_indexes(values, scope="sel_1") == [crypto.blind_index(v, scope="sel_1") for v in values]
    tokens = crypto.encrypt_many([*values, None])
    assert tokens[-1] is None
    assert [crypto.decrypt(token) for token in tokens[:-1] if token] == values


def _import_csv(variant: Any, text: str, batch_size: int) -> dict[str, Any]:
    from catalog.inventory import rows_from_csv

    return codes_import(variant=variant, rows=rows_from_csv(io.BytesIO(text.encode())), batch_size=batch_size).as_dict()


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_the_import_accounts_for_every_line_whatever_the_batches(pool, batch_size):
    """Duplicates inside a batch, across batches and against the seller's other pool; rejected lines
    with their numbers; PINs, serials that COPY must escape, expiry; the file's order is the pool's."""
    other = VariantFactory(product=ProductFactory(seller=pool.product.seller, delivery_type=DeliveryType.CODE_POOL))
    load(other, 1, prefix="ELSEWHERE")  # ELSEWHERE-00001-XY
    text = (
        "code,pin,serial,expires_at\n"
        "AAA-1,1111,s\\1,\n"  # a backslash
        'BBB-2,,"tab\there",2999-01-01\n'  # a tab inside the serial
        "AAA-1,,,\n"  # a duplicate of line 2
        ",,,\n"  # blank: skipped, not counted
        "   ,9,,\n"  # no code: rejected
        "ELSEWHERE-00001-XY,,,\n"  # in the seller's other pool: a duplicate
        "CCC-3,,,2000-01-01\n"  # expired: rejected
        "DDD-4,4444,,\n"
    )
    before = Code.objects.count()
    assert _import_csv(pool, text, batch_size) == {
        "imported": 3,
        "duplicates": 2,
        "rejected": [{"line": 6, "reason": "code is empty."}, {"line": 8, "reason": "The code has already expired."}],
        "rejected_count": 2,
    }
    stored = list(Code.objects.filter(variant=pool).order_by("created_at", "id"))
    assert [(c.code, c.pin, c.serial, c.code_hint, c.status) for c in stored] == [
        ("AAA-1", "1111", "s\\1", "AAA-1"[-4:], "AVAILABLE"),
        ("BBB-2", None, "tab\there", "BBB-2"[-4:], "AVAILABLE"),
        ("DDD-4", "4444", None, "DDD-4"[-4:], "AVAILABLE"),  # no serial: NULL, not an encrypted ""
    ]
    assert stored[1].expires_at is not None and stored[1].expires_at.year == 2999
    assert Code.objects.count() == before + 3
    again = _import_csv(pool, text, batch_size)
    assert (again["imported"], again["duplicates"], again["rejected_count"]) == (0, 5, 2)
    assert Code.objects.count() == before + 3


def test_on_postgresql_rows_go_by_copy_not_through_model_instances(pool, monkeypatch):
    """PostgreSQL: no ``Code`` instance is built or saved, so nothing row-by-row but the encryption;
    SQLite keeps ``bulk_create``."""
    built = []
    original_init = Code.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(Code, "__init__", counting_init)
    result = codes_import(variant=pool, rows=[CodeRow(i, f"COPY-{i:04d}") for i in range(1, 51)], batch_size=20)
    assert (result.imported, result.duplicates) == (50, 0)
    assert len(built) == (0 if connection.vendor == "postgresql" else 50)
    monkeypatch.undo()
    assert [c.code for c in Code.objects.filter(variant=pool).order_by("created_at", "id")] == [
        f"COPY-{i:04d}" for i in range(1, 51)
    ]


def test_an_import_that_breaks_off_leaves_nothing_and_the_connection_usable(pool):
    from catalog.inventory import rows_from_csv
    from marketplace.core.errors import ValidationFailed

    good = "".join(f"GOOD-{i:04d}\n" for i in range(30)).encode()
    with pytest.raises(ValidationFailed):  # not UTF-8 after 30 good lines: 4 batches were already sent
        codes_import(variant=pool, rows=rows_from_csv(io.BytesIO(b"code\n" + good + b"\xff\xfe\n")), batch_size=7)
    assert Code.objects.filter(variant=pool).count() == 0
    assert _import_csv(pool, "code\nAFTER-0001\n", batch_size=7)["imported"] == 1
