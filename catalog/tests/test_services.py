from typing import Any

import pytest

from catalog.models import Product, Variant
from catalog.services import product_create, product_update, sanitize_filename
from marketplace.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db

TEXT = {"content_type": "text", "content": "secret"}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("book.pdf", "book.pdf"),
        ("C:\\Users\\me\\My Book (final).pdf", "My_Book_final.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        ("", "file"),
        (".bashrc", "file.bashrc"),
        ("a..b.zip", "a.b.zip"),
        ("文件.pdf", "file.pdf"),
        ('say "hi"; rm -rf.txt', "say_hi_rm_-rf.txt"),
        ("x" * 300 + ".tar.gz", "x" * 117 + ".gz"),  # cut to 120 characters, keeping the extension
    ],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_service_rejects_bool_price_from_any_caller(seller: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        product_create(seller=seller, title="T", currency="USD", delivery=TEXT, price=True)  # type: ignore[arg-type]

    assert caught.value.fields == {
        "price": ["Must be a whole number of the currency's minor unit (e.g. 1999 for $19.99)."]
    }
    assert Product.objects.count() == 0


def test_update_is_all_or_nothing(seller: Any) -> None:
    product = product_create(seller=seller, title="T", currency="USD", delivery=TEXT, price=100)

    with pytest.raises(ValidationFailed):
        product_update(
            product=product,
            data={"title": "Changed", "variants": [{"name": "A", "price": 1}, {"name": "A", "price": 2}]},
        )

    product.refresh_from_db()
    assert product.title == "T"
    assert list(Variant.objects.values_list("name", "price")) == [("Standard", 100)]
