"""Imports a CSV of codes into a variant's pool: ``manage.py import_codes <variant_id> <path.csv>``.

The file is streamed (``rows_from_csv``) into ``codes_import`` — the same service as the API's
upload — so memory is bounded by one batch, whatever the size of the file. The import is one
transaction: a file that breaks off (bad encoding, a broken CSV) imports nothing.
"""

import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.inventory import DEFAULT_BATCH, ImportResult, codes_import, rows_from_csv
from catalog.models import DeliveryType, Variant
from marketplace.core.errors import Conflict, ValidationFailed

REJECTED_SHOWN = 20


class CountingReader(io.RawIOBase):
    """Counts the bytes read from a file, and keeps the count after the CSV reader closes it
    (``rows_from_csv``'s text wrapper closes the stream it was given when it is done)."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        n = self.raw.readinto(buffer)
        self.bytes_read += n or 0
        return n


class ProgressBar:
    """One line on stderr: lines processed, bytes read of the file's size, lines per second.

    Redrawn in place (``\\r``) at most ``1 / interval`` times a second on a terminal; elsewhere
    (a log, a pipe) one plain line per ``log_interval`` seconds so that logs stay short.
    """

    WIDTH = 24

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        tty: bool,
        total_bytes: int,
        interval: float = 0.1,
        log_interval: float = 5.0,
    ) -> None:
        self.write = write
        self.total_bytes = total_bytes
        self.tty = tty
        self.interval = interval if self.tty else log_interval
        self.started = time.monotonic()
        self.last_drawn = 0.0
        self.drawn = False

    def update(self, lines: int, bytes_read: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last_drawn < self.interval:
            return
        self.last_drawn = now
        elapsed = max(now - self.started, 1e-9)
        fraction = min(bytes_read / self.total_bytes, 1.0) if self.total_bytes else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        text = (
            f"[{bar}] {fraction:6.1%}  {lines:,} lines  {_size(bytes_read)} / {_size(self.total_bytes)}"
            f"  {lines / elapsed:,.0f} lines/s"
        )
        if self.tty:
            self.write(f"\r{text}\x1b[K" + ("\n" if final else ""))
        else:
            self.write(text + "\n")
        self.drawn = True

    def abandon(self) -> None:
        """Ends a half-drawn line before an error message."""
        if self.drawn and self.tty:
            self.write("\n")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _lines_done(result: ImportResult) -> int:
    return result.imported + result.duplicates + result.rejected_count


class Command(BaseCommand):
    help = "Import codes from a CSV file (header: code[,pin,serial,expires_at]) into a code-pool variant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("variant_id", help="The variant's id (var_...).")
        parser.add_argument("path", help="The CSV file to import.")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="Rows per INSERT (default 1000).")

    def handle(self, *args: Any, variant_id: str, path: str, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        variant = Variant.objects.select_related("product").filter(id=variant_id).first()
        if variant is None:
            raise CommandError(f"Variant {variant_id!r} not found.")
        if variant.product.delivery_type != DeliveryType.CODE_POOL:
            raise CommandError(
                f"Variant {variant_id!r} belongs to a {variant.product.delivery_type!r} product: "
                "only code_pool products take codes."
            )
        file_path = Path(path)
        if not file_path.is_file():
            raise CommandError(f"File not found: {path}")

        def write_stderr(text: str) -> None:
            self.stderr.write(text, ending="", style_func=str)
            self.stderr.flush()

        with file_path.open("rb", buffering=0) as raw:
            counter = CountingReader(raw)
            bar = ProgressBar(write_stderr, tty=self.stderr.isatty(), total_bytes=os.fstat(raw.fileno()).st_size)

            def progress(result: ImportResult) -> None:
                bar.update(_lines_done(result), counter.bytes_read)

            try:
                result = codes_import(
                    variant=variant,
                    rows=rows_from_csv(io.BufferedReader(counter)),
                    batch_size=batch_size,
                    progress=progress,
                )
            except ValidationFailed as exc:
                bar.abandon()
                message = exc.message
                if "Nothing was imported" not in message:
                    message += " Nothing was imported."
                raise CommandError(message) from None
            except Conflict as exc:  # the product changed type since the check above
                bar.abandon()
                raise CommandError(exc.message) from None
            except BaseException:
                bar.abandon()
                raise
            bar.update(_lines_done(result), counter.bytes_read, final=True)

        self._print_account(result)

    def _print_account(self, result: ImportResult) -> None:
        self.stdout.write(
            f"imported: {result.imported}\nduplicates: {result.duplicates}\nrejected: {result.rejected_count}"
        )
        shown = result.rejected[:REJECTED_SHOWN]
        for entry in shown:
            self.stdout.write(f"  line {entry['line']}: {entry['reason']}")
        if result.rejected_count > len(shown):
            self.stdout.write(f"  … and {result.rejected_count - len(shown)} more rejected line(s)")
