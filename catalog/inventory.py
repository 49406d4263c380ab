"""Code pools: import, reservation, delivery and release of preloaded codes.

Reservation locks rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
buyers take different codes without waiting on each other; on SQLite every write transaction holds
the database's write lock from its first statement (``transaction_mode = IMMEDIATE``), which
serialises reservations. In both cases the final ``UPDATE ... WHERE status = 'AVAILABLE'`` is
counted, so a code can never be taken twice.
"""

import csv
import functools
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from marketplace.core import crypto
from marketplace.core.crypto import hint
from marketplace.core.errors import Conflict, NotFound, OutOfStock, ValidationFailed
from marketplace.core.ids import make_ids

from .models import Code, CodeStatus, Variant

logger = logging.getLogger(__name__)

MAX_CODE_LENGTH = 500
MAX_REJECTED_LISTED = 1000
DEFAULT_BATCH = 1000


@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_count: int = 0

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTED_LISTED:
            self.rejected.append({"line": line, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_count": self.rejected_count,
        }


@dataclass
class CodeRow:
    line: int
    code: Any
    pin: Any = None
    serial: Any = None
    expires_at: Any = None
    error: str | None = None
    redemption_url: Any = None


def _parse_expiry(value: Any) -> tuple[datetime | None, str | None]:
    if value in (None, ""):
        return None, None
    if not isinstance(value, str):
        return None, "expires_at must be an ISO 8601 date or time."
    parsed = parse_datetime(value.strip())
    if parsed is None:
        day = parse_date(value.strip())
        if day is None:
            return None, "expires_at must be an ISO 8601 date or time."
        parsed = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    if parsed <= timezone.now():
        return None, "The code has already expired."
    return parsed, None


def _clean_row(row: CodeRow) -> tuple[dict[str, Any] | None, str | None]:
    if row.error:
        return None, row.error
    if not isinstance(row.code, str) or not row.code.strip():
        return None, "code is empty."
    values = (row.code, row.pin, row.serial, row.expires_at, row.redemption_url)
    if any(isinstance(value, str) and "\x00" in value for value in values):
        return None, "The line contains a NUL character."
    code = row.code.strip()
    if len(code) > MAX_CODE_LENGTH:
        return None, f"code is longer than {MAX_CODE_LENGTH} characters."
    if any(ch in code for ch in "\r\n\t"):
        return None, "code contains a line break or tab."
    pin = row.pin
    if pin not in (None, "") and not isinstance(pin, (str, int)):
        return None, "pin must be text."
    pin = str(pin).strip() if pin not in (None, "") else None
    if pin and len(pin) > 100:
        return None, "pin is longer than 100 characters."
    serial = None if row.serial in (None, "") else str(row.serial).strip() or None
    if serial and len(serial) > 120:
        return None, "serial is longer than 120 characters."
    redemption_url, error = _clean_redemption_url(row.redemption_url)
    if error:
        return None, error
    expires_at, error = _parse_expiry(row.expires_at)
    if error:
        return None, error
    return {
        "code": code,
        "pin": pin,
        "serial": serial,
        "expires_at": expires_at,
        "redemption_url": redemption_url,
    }, None


def _clean_redemption_url(value: Any) -> tuple[str | None, str | None]:
    """Where the holder redeems the code: an http(s) URL, or nothing."""
    if value in (None, ""):
        return None, None
    if not isinstance(value, str):
        return None, "redemption_url must be text."
    url = value.strip()
    if len(url) > 2000:
        return None, "redemption_url is longer than 2000 characters."
    if not url.lower().startswith(("https://", "http://")) or any(ch in url for ch in " \r\n\t"):
        return None, "redemption_url must be an http(s) URL."
    return url, None


def codes_import(
    *, variant: Variant, rows: Iterable[CodeRow], batch_size: int = DEFAULT_BATCH, progress: Any = None
) -> ImportResult:
    """Imports codes in batches, in one transaction: every line is imported, a duplicate, or
    rejected with its reason — or, if the input breaks off, nothing is imported at all.

    Memory is bounded by the batch: duplicates inside the file are found against the rows already
    written, and across the seller's other pools by the blind index. On PostgreSQL each batch is
    encrypted together and sent with ``COPY`` (``_PostgresCodeCopy``); elsewhere with ``bulk_create``.
    """
    if variant.product.delivery_type != "code_pool":
        raise Conflict("This product does not deliver codes from a pool.", code="not_a_code_pool")
    seller_id = variant.product.seller_id
    result = ImportResult()
    with transaction.atomic():
        writer = _PostgresCodeCopy(variant, seller_id) if connection.vendor == "postgresql" else None
        write = writer.write if writer is not None else functools.partial(_write_batch, variant, seller_id)
        try:
            batch: list[tuple[int, dict[str, Any]]] = []
            for row in rows:
                cleaned, error = _clean_row(row)
                if error or cleaned is None:
                    result.reject(row.line, error or "Invalid line.")
                    continue
                batch.append((row.line, cleaned))
                if len(batch) >= batch_size:
                    write(_with_hashes(batch, seller_id), result)
                    if progress:
                        if writer is not None:
                            writer.wait(result)  # the progress shown is what the database holds
                        progress(result)
                    batch = []
            if batch:
                write(_with_hashes(batch, seller_id), result)
            if writer is not None:
                writer.close(result)
                writer = None
            if batch and progress:
                progress(result)
        finally:
            if writer is not None:  # an error: the batch in flight ends before the rollback
                writer.abandon()
    return result


def _with_hashes(batch: list[tuple[int, dict[str, Any]]], seller_id: Any) -> list[tuple[int, dict[str, Any], str]]:
    hashes = crypto.blind_indexes([cleaned["code"] for _, cleaned in batch], scope=str(seller_id))
    return [(line, cleaned, code_hash) for (line, cleaned), code_hash in zip(batch, hashes, strict=True)]


def _write_batch(
    variant: Variant, seller_id: Any, batch: list[tuple[int, dict[str, Any], str]], result: ImportResult
) -> None:
    hashes = [code_hash for _, _, code_hash in batch]
    existing = set(Code.objects.filter(seller_id=seller_id, code_hash__in=hashes).values_list("code_hash", flat=True))
    new: list[Code] = []
    for _line, cleaned, code_hash in batch:
        if code_hash in existing:
            result.duplicates += 1
            continue
        existing.add(code_hash)
        new.append(
            Code(
                seller_id=seller_id,
                variant=variant,
                code=cleaned["code"],
                pin=cleaned["pin"],
                code_hash=code_hash,
                code_hint=hint(cleaned["code"]),
                serial=cleaned["serial"],
                redemption_url=cleaned["redemption_url"],
                expires_at=cleaned["expires_at"],
            )
        )
    try:
        with transaction.atomic():
            Code.objects.bulk_create(new, batch_size=len(new) or 1)
    except IntegrityError:
        # Another import of the same codes committed meanwhile: fall back to one by one.
        for code in new:
            try:
                with transaction.atomic():
                    code.save(force_insert=True)
            except IntegrityError:
                result.duplicates += 1
                continue
            result.imported += 1
        return
    result.imported += len(new)


class _PostgresCodeCopy:
    """The PostgreSQL import: per batch, the codes and PINs are encrypted together
    (``EncryptedTextField.encrypt_many``), the rows sent with ``COPY`` into a temporary table, and moved with
    one ``INSERT ... SELECT ... ON CONFLICT (seller, code_hash) DO NOTHING``: the blind index's
    unique constraint finds the duplicates, against the seller's other pools, earlier batches and
    imports running at the same time (they wait on each other's rows, then count them). No Django
    model instance is built: nothing but the encryption and the blind index is done row by row.

    The server's share (the unique index, the pool's index) runs while this process encrypts the
    next batch: one batch is in flight on the connection at a time, sent by a helper thread (the
    connection is used by nobody else meanwhile: ``codes_import`` waits for it before returning).

    Foreign keys are checked at once, not deferred to one huge ``COMMIT``: every row has the same
    seller and variant (and no order item), so both parents are locked ``FOR KEY SHARE`` once — what
    each row's foreign-key trigger would do — and, where the database role may
    (``session_replication_role``), the per-row triggers are skipped for the batch's ``INSERT``
    alone; otherwise the code table's keys are made ``IMMEDIATE`` for the import, so each batch's
    checks run with its statement instead of queuing for the ``COMMIT``, and put back afterwards.

    ``created_at`` is the import's start plus the row's position in microseconds: the file's order
    is the pool's order (reservations take the oldest first), as one-by-one creation gave.
    """

    TABLE = "code_import_rows"
    COLUMNS = "n, id, code, pin, code_hash, code_hint, serial, redemption_url, expires_at"

    def __init__(self, variant: Variant, seller_id: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.variant_id = variant.id
        self.seller_id = seller_id
        self.code_field: Any = Code._meta.get_field("code")
        self.pin_field: Any = Code._meta.get_field("pin")
        self.position = 0
        self.started = timezone.now()
        connection.ensure_connection()
        self.raw: Any = connection.connection  # psycopg's connection, inside the caller's transaction
        self.cursor = self.raw.cursor()
        # The parents of every row, checked and held once for the transaction.
        self.cursor.execute("SELECT 1 FROM catalog_variant WHERE id = %s FOR KEY SHARE", [self.variant_id])
        self.cursor.execute("SELECT 1 FROM accounts_user WHERE id = %s FOR KEY SHARE", [seller_id])
        self.skip_row_triggers = self._may_skip_row_triggers()
        self.foreign_keys = "" if self.skip_row_triggers else self._foreign_keys()
        if self.foreign_keys:
            self.cursor.execute(f"SET CONSTRAINTS {self.foreign_keys} IMMEDIATE")
        self.cursor.execute(
            f"CREATE TEMPORARY TABLE {self.TABLE} (n bigint NOT NULL, id varchar(40) NOT NULL, code text NOT NULL,"
            " pin text, code_hash varchar(64) NOT NULL, code_hint varchar(8) NOT NULL, serial text,"
            " redemption_url text, expires_at timestamp with time zone) ON COMMIT DROP"
        )
        self.helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="code-import")
        self.in_flight: Any = None

    def _may_skip_row_triggers(self) -> bool:
        self.cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        row = self.cursor.fetchone()
        return bool(row and row[0])

    def _foreign_keys(self) -> str:
        self.cursor.execute(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.conname) FROM pg_constraint c"
            " JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND c.condeferrable ORDER BY c.conname",
            [Code._meta.db_table],
        )
        return ", ".join(name for (name,) in self.cursor.fetchall())

    def write(self, batch: list[tuple[int, dict[str, Any], str]], result: ImportResult) -> None:
        unique: dict[str, dict[str, Any]] = {}
        duplicates = 0
        for _line, cleaned, code_hash in batch:
            if code_hash in unique:
                duplicates += 1  # twice in this batch: the first line wins
            else:
                unique[code_hash] = cleaned
        cleaned_rows = list(unique.values())
        codes = self.code_field.encrypt_many([row["code"] for row in cleaned_rows])
        pins = self.pin_field.encrypt_many([row["pin"] for row in cleaned_rows])
        # Serials and redemption URLs are mostly absent: only the ones given cost an encryption.
        serials = self.pin_field.encrypt_many([row["serial"] for row in cleaned_rows])
        urls = self.pin_field.encrypt_many([row["redemption_url"] for row in cleaned_rows])
        ids = make_ids("cod", len(cleaned_rows))
        first = self.position
        self.position += len(cleaned_rows)
        rows = [
            (n, code_id, token, pin, code_hash, hint(row["code"]), serial, url, row["expires_at"])
            for n, (row, code_hash, token, pin, code_id, serial, url) in enumerate(
                zip(cleaned_rows, unique, codes, pins, ids, serials, urls, strict=True), start=first
            )
        ]
        self.wait(result)
        result.duplicates += duplicates
        self.in_flight = self.helper.submit(self._send, rows)

    def _send(self, rows: list[tuple[Any, ...]]) -> tuple[int, int]:
        with self.cursor.copy(f"COPY {self.TABLE} ({self.COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if self.skip_row_triggers:
            self.cursor.execute("SET LOCAL session_replication_role = replica")
        try:
            self.cursor.execute(
                "INSERT INTO catalog_code (id, seller_id, variant_id, code, pin, code_hash, code_hint, serial,"
                " redemption_url, expires_at, status, source, created_at)"
                " SELECT id, %s, %s, code, pin, code_hash, code_hint, serial, redemption_url, expires_at, %s, %s,"
                " %s + n * interval '1 microsecond' FROM code_import_rows ORDER BY n"
                " ON CONFLICT (seller_id, code_hash) DO NOTHING",
                [self.seller_id, self.variant_id, CodeStatus.AVAILABLE, Code.Source.POOL, self.started],
            )
            inserted = self.cursor.rowcount
        finally:
            if self.skip_row_triggers:
                self.cursor.execute("SET LOCAL session_replication_role = origin")
        self.cursor.execute(f"TRUNCATE {self.TABLE}")
        return inserted, len(rows)

    def wait(self, result: ImportResult) -> None:
        """Waits for the batch in flight and counts it (its error, if any, is raised here)."""
        if self.in_flight is None:
            return
        future, self.in_flight = self.in_flight, None
        inserted, sent = future.result()
        result.imported += inserted
        result.duplicates += sent - inserted

    def close(self, result: ImportResult) -> None:
        try:
            self.wait(result)
            self.cursor.execute(f"DROP TABLE {self.TABLE}")
            if self.foreign_keys:
                self.cursor.execute(f"SET CONSTRAINTS {self.foreign_keys} DEFERRED")
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Lets the batch in flight finish (or fail) before the caller's transaction rolls back."""
        if self.in_flight is not None:
            try:
                self.in_flight.exception()
            finally:
                self.in_flight = None
        self.helper.shutdown(wait=True)
        self.cursor.close()


def rows_from_json(items: Any) -> Iterator[CodeRow]:
    if not isinstance(items, list):
        raise ValidationFailed("codes must be a list.", fields={"codes": ["Must be a list of objects with a code."]})
    for index, item in enumerate(items, start=1):
        if isinstance(item, str):
            yield CodeRow(index, item)
        elif isinstance(item, dict):
            yield CodeRow(
                index,
                item.get("code"),
                item.get("pin"),
                item.get("serial"),
                item.get("expires_at"),
                redemption_url=item.get("redemption_url"),
            )
        else:
            yield CodeRow(index, None, error="Each entry must be an object with a code.")


def rows_from_csv(stream: IO[bytes]) -> Iterator[CodeRow]:
    """Streams a CSV with a header ``code`` and optional ``pin,serial,expires_at,redemption_url`` columns.

    The caller's stream stays open afterwards (the text wrapper is detached, not closed)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_rows(text)
    finally:
        try:
            text.detach()
        except ValueError:
            pass


def _csv_rows(text: IO[str]) -> Iterator[CodeRow]:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationFailed("The file is empty.", fields={"file": ["The file is empty."]}) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed("The file is not UTF-8 CSV.", fields={"file": [str(exc)]}) from None
    columns = [name.strip().lower() for name in header]
    if "code" not in columns:
        message = "The first line must be a header with a `code` column (and optional pin, serial, expires_at)."
        raise ValidationFailed(message, fields={"file": [message]})
    unknown = [c for c in columns if c not in ("code", "pin", "serial", "expires_at", "redemption_url")]
    if unknown:
        message = f"Unknown column(s): {', '.join(unknown)}."
        raise ValidationFailed(message, fields={"file": [message]})
    index = {name: columns.index(name) for name in columns}
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(columns):
                yield CodeRow(line, None, error=f"Expected {len(columns)} columns, found {len(values)}.")
                continue

            def get(name: str, values: list[str] = values) -> str | None:
                return values[index[name]] if name in index else None

            yield CodeRow(
                line, get("code"), get("pin"), get("serial"), get("expires_at"), redemption_url=get("redemption_url")
            )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed(
            f"The file could not be read past line {reader.line_num}: {exc}. Nothing was imported.",
            fields={"file": [str(exc)]},
        ) from None


# --- Status changes by the seller -----------------------------------------------------------------

_ACTIONS = {
    "block": ({CodeStatus.AVAILABLE}, CodeStatus.BLOCKED),
    "unblock": ({CodeStatus.BLOCKED}, CodeStatus.AVAILABLE),
    "revoke": ({CodeStatus.AVAILABLE, CodeStatus.BLOCKED, CodeStatus.DELIVERED}, CodeStatus.REVOKED),
}


def code_set_status(*, variant: Variant, code_id: str, action: str) -> Code:
    allowed, target = _ACTIONS[action]
    with transaction.atomic():
        code = Code.objects.select_for_update().filter(id=code_id, variant=variant).first()
        if code is None:
            raise NotFound("Code not found.", code="code_not_found")
        if code.status not in allowed:
            raise Conflict(
                f"A code that is {code.status} cannot be {action}ed."
                + (" It is reserved for an unpaid order." if code.status == CodeStatus.ALLOCATED else ""),
                code="invalid_code_status",
            )
        code.status = target
        code.save(update_fields=["status"])
    logger.info("code %s (••••%s) %s by seller", code.id, code.code_hint, action)
    return code


# --- Reservation, delivery and release ------------------------------------------------------------


def available_codes(variant_id: str) -> Any:
    """The variant's codes that can still be sold. Served by the index on
    ``(variant, status, created_at, id)`` that carries ``expires_at``: reservations read it in order
    and stop after ``LIMIT``, counts read the index alone."""
    now = timezone.now()
    return Code.objects.filter(variant_id=variant_id, status=CodeStatus.AVAILABLE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def available_counts(variant_ids: list[str], *, at_most: int | None = None) -> dict[str, int]:
    """Available codes per variant. With ``at_most``, each count stops there (``LIMIT at_most``):
    what a page needs to say "3 left" or "sold out" costs the same at a million codes as at ten.
    Without it, an exact count from the index (the seller's stock and the public ``stock``)."""
    counts = {variant_id: 0 for variant_id in variant_ids}
    if not variant_ids:
        return counts
    if at_most is not None:
        for variant_id in variant_ids:
            counts[variant_id] = available_codes(variant_id)[:at_most].count() if at_most > 0 else 0
        return counts
    now = timezone.now()
    rows = (
        Code.objects.filter(variant_id__in=variant_ids, status=CodeStatus.AVAILABLE)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values("variant_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts.update({row["variant_id"]: row["n"] for row in rows})
    return counts


def codes_allocate(*, variant: Variant, order_item_id: str, quantity: int) -> int:
    """Reserves ``quantity`` codes for an item. Must run inside the order's transaction.

    Takes at most ``quantity`` available codes, oldest first, skipping those other checkouts hold
    (``FOR UPDATE SKIP LOCKED ... LIMIT quantity`` on PostgreSQL), and decides from how many it got:
    fewer than asked is ``OutOfStock`` (the caller's transaction rolls back, so nothing is reserved
    or created). The pool is never counted, so a checkout costs the same at a million codes as at a
    thousand; the refusal's message only looks ``quantity`` codes ahead.

    Returns 0 when the pool is now empty, 1 otherwise.
    """
    ids = list(
        available_codes(variant.id)
        .order_by("created_at", "id")
        .select_for_update(skip_locked=True)
        .values_list("id", flat=True)[:quantity]
    )
    taken = 0
    if len(ids) == quantity:
        taken = Code.objects.filter(id__in=ids, status=CodeStatus.AVAILABLE).update(
            status=CodeStatus.ALLOCATED, order_item_id=order_item_id, allocated_at=timezone.now()
        )
    if taken != quantity:
        # Not a count of the pool: at most ``quantity`` rows, enough to tell the buyer which case it is.
        left = available_counts([variant.id], at_most=quantity)[variant.id]
        if left >= quantity:  # the rest are held, this instant, by other buyers' open checkouts
            message = f"The last codes of {variant.name} are being reserved by other buyers. Try again in a moment."
        elif left:
            message = f"Only {left} left of {variant.name}."
        else:
            message = f"{variant.name} is sold out."
        raise OutOfStock(message, extra={"variant_id": variant.id, "available": left})
    # Whether the pool is now empty: an EXISTS on the index, not a count.
    return 1 if available_codes(variant.id).exists() else 0


def codes_release(*, order_item_ids: list[str]) -> int:
    """Puts an unpaid order's reserved codes back in the pool."""
    return Code.objects.filter(order_item_id__in=order_item_ids, status=CodeStatus.ALLOCATED).update(
        status=CodeStatus.AVAILABLE, order_item=None, allocated_at=None
    )


def codes_deliver(*, variant: Variant, order_item_id: str, quantity: int) -> int:
    """Turns the item's reserved codes DELIVERED, reserving the missing ones first (a payment that
    arrived after its reservation was released). Idempotent. Returns how many are still missing."""
    delivered = Code.objects.filter(order_item_id=order_item_id, status=CodeStatus.DELIVERED).count()
    missing = quantity - delivered
    if missing <= 0:
        return 0
    reserved = Code.objects.filter(order_item_id=order_item_id, status=CodeStatus.ALLOCATED).count()
    if reserved < missing:
        ids = list(
            available_codes(variant.id)
            .order_by("created_at", "id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[: missing - reserved]
        )
        Code.objects.filter(id__in=ids, status=CodeStatus.AVAILABLE).update(
            status=CodeStatus.ALLOCATED, order_item_id=order_item_id, allocated_at=timezone.now()
        )
    ids = list(
        Code.objects.filter(order_item_id=order_item_id, status=CodeStatus.ALLOCATED)
        .order_by("allocated_at", "id")
        .values_list("id", flat=True)[:missing]
    )
    done = Code.objects.filter(id__in=ids, status=CodeStatus.ALLOCATED).update(
        status=CodeStatus.DELIVERED, delivered_at=timezone.now()
    )
    return missing - done


def codes_deliver_together(*, wanted: dict[str, int]) -> dict[str, list[Code]] | None:
    """Delivers the reserved codes of several order items at once: one locking SELECT of their
    codes and one UPDATE, where ``codes_deliver`` makes four statements per item.

    ``wanted`` maps each order item's id to its quantity. Answers each item's codes (reserved and
    delivered, the delivered ones first in the pool's order), or ``None`` — with nothing changed —
    when an item holds fewer reserved codes than it still misses (its reservation was released
    before the payment arrived): ``codes_deliver`` then reserves again from the pool, item by item.
    Idempotent like ``codes_deliver``: codes already delivered count, none is delivered twice.
    """
    codes = list(
        Code.objects.select_for_update()
        .filter(order_item_id__in=list(wanted), status__in=[CodeStatus.ALLOCATED, CodeStatus.DELIVERED])
        .order_by("allocated_at", "id")
    )
    by_item: dict[str, list[Code]] = {item_id: [] for item_id in wanted}
    for code in codes:
        by_item[str(code.order_item_id)].append(code)
    deliver: list[Code] = []
    for item_id, quantity in wanted.items():
        held = by_item[item_id]
        missing = quantity - sum(code.status == CodeStatus.DELIVERED for code in held)
        if missing <= 0:
            continue
        reserved = [code for code in held if code.status == CodeStatus.ALLOCATED]
        if len(reserved) < missing:
            return None
        deliver.extend(reserved[:missing])
    if deliver:
        now = timezone.now()
        Code.objects.filter(id__in=[code.id for code in deliver]).update(status=CodeStatus.DELIVERED, delivered_at=now)
        for code in deliver:
            code.status, code.delivered_at = CodeStatus.DELIVERED, now
    return {item_id: sorted(held, key=lambda code: (code.created_at, code.id)) for item_id, held in by_item.items()}
