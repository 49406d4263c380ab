"""How fast a large CSV of codes imports, against this machine's raw Fernet rate, in how much memory.

Generates N codes into a CSV in a temporary folder and imports them into a fresh code-pool variant
with the code path of ``manage.py import_codes`` (``codes_import`` over ``rows_from_csv``, one
transaction, batches of ``--batch-size``: on PostgreSQL encrypted together and sent with ``COPY``).
Prints the import rate ÷ the machine's raw Fernet rate, which is timed just before and just after
the import and averaged, so that a change of the machine's load falls on both. Asserts only that
every code arrived.

    .venv/bin/python -m bench.bench_import_codes [--count 1000000] [--batch-size 1000] [--pins]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.bench_import_codes

Peak memory is given twice: the process's peak resident set (``ru_maxrss``) before and after the
import, always; and with ``--tracemalloc`` the tracemalloc peak of the Python heap during the import.
tracemalloc hooks every allocation and slows this import about 3.5x, so a traced run's rate is
not the machine's rate: time with a plain run, measure the heap with a traced one. Run with two
counts (100,000 and 1,000,000): bounded memory means the peaks stay flat while the file grows tenfold.
"""

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import peak_rss_mb, throwaway_database


def generate_csv(path: Path, count: int, *, pins: bool) -> None:
    """Unique codes shaped like gift cards (``GC-0000000042-7F3A9C21``), written as they are made."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("code,pin\n" if pins else "code\n")
        chunk: list[str] = []
        for i in range(count):
            code = f"GC-{i:010d}-{(i * 2654435761) & 0xFFFFFFFF:08X}"
            chunk.append(f"{code},{i % 10000:04d}\n" if pins else f"{code}\n")
            if len(chunk) == 10_000:
                out.write("".join(chunk))
                chunk = []
        out.write("".join(chunk))


def raw_encrypt_rate(sample: int) -> float:
    """Encryptions per second of short strings with the configured keys, as the import does them."""
    from marketplace.core.crypto import fernet

    f = fernet()
    started = time.perf_counter()
    for i in range(sample):
        f.encrypt(f"GC-{i:010d}-{(i * 2654435761) & 0xFFFFFFFF:08X}".encode())
    return sample / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000, help="codes to generate and import")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--pins", action="store_true", help="add a PIN column (two encryptions per code)")
    parser.add_argument(
        "--encrypt-sample", type=int, default=0, help="raw encryptions to time, twice (default: --count, <= 200,000)"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="trace the Python heap during the import (slows it ~3.5x)"
    )
    args = parser.parse_args()

    with throwaway_database() as database:
        from catalog.inventory import codes_import, rows_from_csv
        from catalog.models import Code, DeliveryType, Product, ProductStatus, Variant
        from marketplace.accounts.models import Role, User

        seller = User.objects.create_user(f"bench-{os.getpid()}@example.com", None, name="Bench", role=Role.SELLER)
        product = Product.objects.create(
            seller=seller,
            slug=f"bench-import-{os.getpid()}",
            title="Bench gift card",
            status=ProductStatus.ACTIVE,
            currency="USD",
            delivery_type=DeliveryType.CODE_POOL,
        )
        variant = Variant.objects.create(product=product, name="$25", price=2500)

        path = database.workdir / "codes.csv"
        started = time.perf_counter()
        generate_csv(path, args.count, pins=args.pins)
        generated_in = time.perf_counter() - started
        size_mb = path.stat().st_size / (1024 * 1024)

        sample = args.encrypt_sample or min(args.count, 200_000)
        encrypt_rate_before = raw_encrypt_rate(sample)
        rss_before = peak_rss_mb()
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        with path.open("rb") as stream:
            result = codes_import(variant=variant, rows=rows_from_csv(stream), batch_size=args.batch_size)
        import_seconds = time.perf_counter() - started
        traced_peak_mb = tracemalloc.get_traced_memory()[1] / (1024 * 1024) if tracemalloc.is_tracing() else None
        tracemalloc.stop()
        rss_after = peak_rss_mb()

        stored = Code.objects.filter(variant=variant).count()
        first = Code.objects.filter(variant=variant).order_by("created_at", "id").first()
        round_trip = first is not None and first.code == "GC-0000000000-00000000"

        encryptions_per_code = 2 if args.pins else 1
        encrypt_rate = (encrypt_rate_before + raw_encrypt_rate(sample)) / 2

        import_rate = args.count / import_seconds
        print(f"database:                 {database.label}")
        print(f"codes:                    {args.count:,} ({size_mb:,.1f} MB CSV, generated in {generated_in:.1f} s)")
        print(f"batch size:               {args.batch_size:,}")
        print(
            f"account:                  imported {result.imported:,}, duplicates {result.duplicates:,}, "
            f"rejected {result.rejected_count:,}; rows stored {stored:,}; first code decrypts back: {round_trip}"
        )
        traced = " (under tracemalloc: slower than untraced)" if args.tracemalloc else ""
        print(f"import:                   {import_seconds:,.1f} s = {import_rate:,.0f} codes/s{traced}")
        print(
            f"raw Fernet encryption:    {encrypt_rate:,.0f} encryptions/s (sample of {sample:,} before and after the "
            "import, averaged)"
        )
        print(
            f"import / raw encryption:  {import_rate * encryptions_per_code / encrypt_rate:.3f} "
            f"({encryptions_per_code} encryption(s) per code)"
        )
        if traced_peak_mb is None:
            print("tracemalloc peak:         (not measured: add --tracemalloc)")
        else:
            print(f"tracemalloc peak:         {traced_peak_mb:,.1f} MB during the import")
        print(f"ru_maxrss:                {rss_before:,.1f} MB before the import, {rss_after:,.1f} MB after")
        ok = result.imported == args.count == stored and round_trip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
