"""``manage.py import_codes``: streams a CSV into a pool, accounts for every line, imports nothing
from a file that breaks off, and refuses what is not a code pool."""

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from catalog.inventory import CodeRow, codes_import
from catalog.management.commands import import_codes
from catalog.models import Code, CodeStatus, DeliveryType
from catalog.tests.factories import ProductFactory, VariantFactory
from marketplace.accounts.tests.factories import SellerFactory


@pytest.fixture
def seller(db):
    return SellerFactory()


@pytest.fixture
def pool(seller):
    product = ProductFactory(seller=seller, delivery_type=DeliveryType.CODE_POOL, delivery_content="")
    return VariantFactory(product=product, name="$25", price=2500)


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("import_codes", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_csv(tmp_path: Path, text: str | bytes, name: str = "codes.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


@pytest.mark.django_db
def test_imports_and_accounts_for_every_line(tmp_path, pool, seller):
    # A code the seller already holds in another pool is a duplicate here too.
    other = VariantFactory(product=pool.product, name="$50", price=5000)
    codes_import(variant=other, rows=[CodeRow(1, "GIFT-ELSEWHERE")])
    future = (timezone.now() + timedelta(days=30)).date().isoformat()
    path = write_csv(
        tmp_path,
        "code,pin,serial,expires_at\n"
        f"GIFT-AAAA-1111,1234,S1,{future}\n"  # line 2
        "GIFT-BBBB-2222,,,\n"  # line 3
        "GIFT-AAAA-1111,,,\n"  # line 4: duplicate within the file
        "GIFT-ELSEWHERE,,,\n"  # line 5: duplicate of the other pool
        ",9999,,\n"  # line 6: empty code
        "GIFT-OLD,,,2001-01-01\n"  # line 7: expired
        "GIFT-BAD-DATE,,,next tuesday\n"  # line 8: unreadable date
        "GIFT-SHORT,1\n"  # line 9: wrong number of columns
        "\n"  # blank lines are skipped, not counted
        "  GIFT-CCCC-3333  ,,,\n",  # line 11: trimmed
    )

    out, err = run(pool.id, path)

    assert out.splitlines() == [
        "imported: 3",
        "duplicates: 2",
        "rejected: 4",
        "  line 6: code is empty.",
        "  line 7: The code has already expired.",
        "  line 8: expires_at must be an ISO 8601 date or time.",
        "  line 9: Expected 4 columns, found 2.",
    ]
    assert "9 lines" in err and "100.0%" in err
    stored = list(Code.objects.filter(variant=pool).order_by("created_at", "id"))
    assert [c.code for c in stored] == ["GIFT-AAAA-1111", "GIFT-BBBB-2222", "GIFT-CCCC-3333"]
    assert [c.pin for c in stored] == ["1234", None, None]
    assert [c.serial for c in stored] == ["S1", None, None]
    assert [c.code_hint for c in stored] == ["1111", "2222", "3333"]
    assert {c.status for c in stored} == {CodeStatus.AVAILABLE}
    assert {c.seller_id for c in stored} == {seller.id}
    assert stored[0].expires_at is not None and stored[0].expires_at.date().isoformat() == future
    # Encrypted at rest: the column holds a Fernet token, never the code.
    with connection.cursor() as cursor:
        cursor.execute("SELECT code, pin, serial FROM catalog_code WHERE id = %s", [stored[0].id])
        raw_code, raw_pin, raw_serial = cursor.fetchone()
    assert raw_code.startswith("gAAAA") and "GIFT" not in raw_code
    assert raw_pin.startswith("gAAAA") and "1234" not in raw_pin
    assert raw_serial.startswith("gAAAA") and "S1" not in raw_serial
    assert Code.objects.filter(variant=other).count() == 1


@pytest.mark.django_db
def test_streams_in_batches_with_progress(tmp_path, pool, monkeypatch):
    seen: list[tuple[int, int]] = []

    class RecordingBar(import_codes.ProgressBar):
        def update(self, lines, bytes_read, *, final=False):
            seen.append((lines, bytes_read))
            super().update(lines, bytes_read, final=final)

    monkeypatch.setattr(import_codes, "ProgressBar", RecordingBar)
    rows = [f"CODE-{i:06d}-{'x' * 40}" for i in range(5000)]
    path = write_csv(tmp_path, "code\n" + "\n".join(rows) + "\n" + rows[0] + "\n")
    size = path.stat().st_size

    out, err = run(pool.id, path, "--batch-size", 250)

    assert out.splitlines() == ["imported: 5000", "duplicates: 1", "rejected: 0"]
    assert Code.objects.filter(variant=pool).count() == 5000
    assert {c.code for c in Code.objects.filter(variant=pool)} == set(rows)
    # One progress call per batch (21 batches) and a final one; the file is read as it goes.
    assert len(seen) == 22
    assert seen[0][0] == 250 and seen[0][1] < size // 4
    assert [lines for lines, _ in seen] == sorted(lines for lines, _ in seen)
    assert seen[-1] == (5001, size)
    assert err.strip().endswith("lines/s")
    assert "5,001 lines" in err


@pytest.mark.django_db(transaction=True)
def test_file_that_breaks_off_imports_nothing(tmp_path, pool):
    good = "".join(f"GOOD-{i:06d}\n" for i in range(3000)).encode()
    path = write_csv(tmp_path, b"code\n" + good + b"BAD-\xff\xfe-BYTES\n" + b"LATER-000001\n")

    with pytest.raises(CommandError) as raised:
        run(pool.id, path, "--batch-size", 100)

    message = str(raised.value)
    assert message.startswith("The file could not be read past line ")
    assert message.endswith("Nothing was imported.")
    assert message.count("Nothing was imported") == 1
    assert Code.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty. Nothing was imported."),
        (
            b"pin\n1234\n",
            "The first line must be a header with a `code` column (and optional pin, serial, expires_at). "
            "Nothing was imported.",
        ),
        (b"code,colour\nA,red\n", "Unknown column(s): colour. Nothing was imported."),
    ],
)
def test_malformed_header_is_refused(tmp_path, pool, content, message):
    path = write_csv(tmp_path, content)

    with pytest.raises(CommandError) as raised:
        run(pool.id, path)

    assert str(raised.value) == message
    assert Code.objects.count() == 0


@pytest.mark.django_db
def test_unknown_variant(tmp_path, pool):
    path = write_csv(tmp_path, "code\nA-1\n")

    with pytest.raises(CommandError) as raised:
        run("var_doesnotexist", path)

    assert str(raised.value) == "Variant 'var_doesnotexist' not found."
    assert Code.objects.count() == 0


@pytest.mark.django_db
def test_missing_file(tmp_path, pool):
    missing = tmp_path / "nope.csv"

    with pytest.raises(CommandError) as raised:
        run(pool.id, missing)

    assert str(raised.value) == f"File not found: {missing}"
    assert Code.objects.count() == 0


@pytest.mark.django_db
def test_product_that_is_not_a_code_pool(tmp_path, seller):
    variant = VariantFactory(product=ProductFactory(seller=seller, delivery_type=DeliveryType.TEXT))
    path = write_csv(tmp_path, "code\nA-1\n")

    with pytest.raises(CommandError) as raised:
        run(variant.id, path)

    assert str(raised.value) == (
        f"Variant '{variant.id}' belongs to a 'text' product: only code_pool products take codes."
    )
    assert Code.objects.count() == 0


@pytest.mark.django_db
def test_batch_size_must_be_positive(tmp_path, pool):
    path = write_csv(tmp_path, "code\nA-1\n")

    with pytest.raises(CommandError, match="--batch-size must be at least 1."):
        run(pool.id, path, "--batch-size", 0)

    assert Code.objects.count() == 0


@pytest.mark.django_db
def test_lists_the_first_twenty_rejections_and_counts_the_rest(tmp_path, pool):
    path = write_csv(tmp_path, "code,pin\n" + "".join(f"ONLY-ONE-COLUMN-{i}\n" for i in range(25)) + "OK-1,\n")

    out, _ = run(pool.id, path)

    lines = out.splitlines()
    assert lines[:3] == ["imported: 1", "duplicates: 0", "rejected: 25"]
    assert lines[3] == "  line 2: Expected 2 columns, found 1."
    assert lines[22] == "  line 21: Expected 2 columns, found 1."
    assert lines[23:] == ["  … and 5 more rejected line(s)"]
    assert Code.objects.filter(variant=pool).count() == 1
