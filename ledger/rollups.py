"""The balance rollup: a cache of the sellers' ledger lines per (seller, account, currency, UTC day of
``available_on``), so that a balance costs a few hundred rows whatever the number of lines.

- ``rollup_add`` keeps it: one statement in the same database transaction as the lines it adds (an
  ``INSERT … ON CONFLICT DO UPDATE`` that adds each day's sum, count and earliest ``available_on``).
  The rows are written in one order (sorted keys), so two writers never deadlock on them.
- ``seller_sums`` reads it: every day but today from the rollup (a day before today is wholly
  available, a day after it wholly pending), today's lines one by one, split at now. One statement.
- ``rollup_differences`` compares it with the lines (``ledger_check``), ``rollups_rebuild`` rebuilds
  it from them (``manage.py ledger_rebuild_rollups``): the lines are the truth, the rollup is derived.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Min, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import SELLER_ACCOUNTS, Account, BalanceRollup, LedgerLine

Key = tuple[str, str, str, date]  # seller id, account, currency, day


def _day(value: datetime) -> date:
    return value.astimezone(UTC).date()


def rollup_add(lines: Iterable[LedgerLine]) -> None:
    """Adds the seller lines among ``lines`` to their days' rollup rows: one statement, none if there
    is no seller line."""
    keyed: dict[Key, tuple[int, int, datetime]] = {}
    for line in lines:
        if line.account not in SELLER_ACCOUNTS:
            continue
        key = (str(line.seller_id), line.account, line.currency, _day(line.available_on))
        amount, count, first = keyed.get(key, (0, 0, line.available_on))
        keyed[key] = (amount + line.amount, count + 1, min(first, line.available_on))
    if not keyed:
        return
    ops, quote = connection.ops, connection.ops.quote_name
    table = quote(BalanceRollup._meta.db_table)
    params: list[Any] = []
    for (seller_id, account, currency, day), (amount, count, first) in sorted(keyed.items()):
        params += [
            seller_id,
            account,
            currency,
            ops.adapt_datefield_value(day),
            amount,
            count,
            ops.adapt_datetimefield_value(first),
        ]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(keyed))
    sql = (
        f"INSERT INTO {table} (seller_id, account, currency, day, amount, {quote('lines')}, first_available_on) "  # noqa: S608 - our own names
        f"VALUES {values} ON CONFLICT (seller_id, account, currency, day) DO UPDATE SET "
        f"amount = {table}.amount + excluded.amount, "
        f"{quote('lines')} = {table}.{quote('lines')} + excluded.{quote('lines')}, "
        f"first_available_on = CASE WHEN excluded.first_available_on < {table}.first_available_on "
        f"THEN excluded.first_available_on ELSE {table}.first_available_on END"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _aware(value: Any) -> datetime | None:
    """A timestamp from a raw query: PostgreSQL gives a datetime, SQLite the text Django stored (UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def seller_sums(*, seller_id: Any, now: datetime, currency: str | None = None) -> list[dict[str, Any]]:
    """Per currency (ordered): ``pending`` and ``available`` (the ``seller_balance`` lines split at
    ``now`` by ``available_on``), ``reserved`` (``seller_reserved``), and ``next_available_on`` (the
    earliest ``available_on`` after now of a balance line). Sums are 0, never None. One statement: the
    rollup for every day but today, and today's lines (through the rollup's rows of today, so that each
    (account, currency) reads its exact range of the lines' balance index)."""
    ops, quote = connection.ops, connection.ops.quote_name
    today = _day(now)
    start = datetime.combine(today, time.min, tzinfo=UTC)
    rollup, line = quote(BalanceRollup._meta.db_table), quote(LedgerLine._meta.db_table)
    only = " AND {}.currency = %s" if currency else ""
    sql = f"""
        SELECT currency,
               SUM(CASE WHEN account = %s AND part = 'p' THEN amount ELSE 0 END),
               SUM(CASE WHEN account = %s AND part = 'a' THEN amount ELSE 0 END),
               SUM(CASE WHEN account = %s THEN amount ELSE 0 END),
               MIN(CASE WHEN account = %s AND part = 'p' THEN first_on END)
        FROM (
            SELECT r.currency, r.account, CASE WHEN r.day < %s THEN 'a' ELSE 'p' END AS part,
                   r.amount, r.first_available_on AS first_on
            FROM {rollup} r WHERE r.seller_id = %s AND r.day <> %s{only.format("r")}
            UNION ALL
            SELECT l.currency, l.account, CASE WHEN l.available_on > %s THEN 'p' ELSE 'a' END,
                   l.amount, l.available_on
            FROM {rollup} t JOIN {line} l
              ON l.seller_id = t.seller_id AND l.account = t.account AND l.currency = t.currency
             AND l.available_on >= %s AND l.available_on < %s
            WHERE t.seller_id = %s AND t.day = %s{only.format("t")}
        ) parts
        GROUP BY currency ORDER BY currency
    """  # noqa: S608 - our own table names; every value is a parameter
    day = ops.adapt_datefield_value(today)
    params: list[Any] = [Account.SELLER_BALANCE, Account.SELLER_BALANCE, Account.SELLER_RESERVED]
    params += [Account.SELLER_BALANCE, day, str(seller_id), day] + ([currency] if currency else [])
    params += [ops.adapt_datetimefield_value(now), ops.adapt_datetimefield_value(start)]
    params += [ops.adapt_datetimefield_value(start + timedelta(days=1)), str(seller_id), day]
    params += [currency] if currency else []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        {
            "currency": code,
            "pending": int(pending or 0),
            "available": int(available or 0),
            "reserved": int(reserved or 0),
            "next_available_on": _aware(first),
        }
        for code, pending, available, reserved, first in rows
    ]


def _from_lines() -> QuerySet[Any]:
    """What the rollup should hold, computed from the lines."""
    return (
        LedgerLine.objects.filter(account__in=sorted(SELLER_ACCOUNTS))
        .annotate(day=TruncDate("available_on", tzinfo=UTC))
        .values("seller_id", "account", "currency", "day")
        .annotate(amount=Sum("amount"), lines=Count("id"), first_available_on=Min("available_on"))
        .order_by()
    )


def rollup_differences() -> list[tuple[Key, tuple[int, int, Any] | None, tuple[int, int, Any] | None]]:
    """Every rollup row that disagrees with the lines: (key, from the lines, stored); None for a
    missing side. Empty when the rollup is exact."""
    want = {
        (str(r["seller_id"]), r["account"], r["currency"], r["day"]): (r["amount"], r["lines"], r["first_available_on"])
        for r in _from_lines().iterator()
    }
    got = {
        (str(seller_id), account, currency, day): (amount, lines, first)
        for seller_id, account, currency, day, amount, lines, first in BalanceRollup.objects.values_list(
            "seller_id", "account", "currency", "day", "amount", "lines", "first_available_on"
        ).iterator()
    }
    return [(key, want.get(key), got.get(key)) for key in sorted(set(want) | set(got)) if want.get(key) != got.get(key)]


def rollups_rebuild() -> int:
    """Rebuilds the whole rollup from the lines, in one transaction; returns the rows written. On
    PostgreSQL the rollup is locked first (``EXCLUSIVE``: reads go on, writers wait), so a write that
    committed its lines before the rebuild's statements is counted by them, and one still running
    adds its rows after the rebuild commits."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"LOCK TABLE {connection.ops.quote_name(BalanceRollup._meta.db_table)} IN EXCLUSIVE MODE"
                )
        BalanceRollup.objects.all().delete()
        rows = (BalanceRollup(**row) for row in _from_lines().iterator())
        written = 0
        batch: list[BalanceRollup] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 5000:
                written += len(BalanceRollup.objects.bulk_create(batch))
                batch = []
        written += len(BalanceRollup.objects.bulk_create(batch))
    return written
