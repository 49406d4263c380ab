"""The range that numbers and dates from outside must fall in, so that a value no one can mean is a
clear 400 (or a form error) where it is read, instead of an overflow deep inside ``datetime``
(``9999-12-31`` plus a day), the database driver (a 2**70 integer) or PostgreSQL (a count beyond
its 32-bit ``integer``).

Every parser of outside input uses these: the JSON parser (``marketplace.core.parsers``), the API's
date and number filters, the dashboard's forms, and the services' own checks of counts.
"""

from datetime import date, datetime

from django.core.exceptions import ValidationError

# The widest integer column (PostgreSQL's bigint, SQLite's INTEGER): the JSON parser refuses any
# integer outside it, whichever field it is for.
MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)

# Counts (stock, uses, limits) are ``PositiveIntegerField``s: ``integer`` on PostgreSQL.
MAX_COUNT = 2**31 - 1

# Days and times a seller can mean: far from ``date.min``/``date.max``, so that a range's end plus a
# day, or a time converted to UTC, never leaves what ``datetime`` can hold.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2999, 12, 31)
DAY_RANGE_MESSAGE = f"Must be between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}."


def day_in_bounds(day: date) -> bool:
    return EARLIEST_DAY <= day <= LATEST_DAY


def moment_in_bounds(moment: datetime) -> bool:
    """A time whose day is in bounds both where it was written and in UTC (its own day is checked
    first, so the conversion cannot overflow)."""
    if not day_in_bounds(moment.date()):
        return False
    offset = moment.utcoffset()
    return offset is None or day_in_bounds((moment.replace(tzinfo=None) - offset).date())


def validate_day(value: date) -> None:
    """A Django validator (forms, DRF fields, django-filter filters) for a day in bounds."""
    if isinstance(value, datetime):
        validate_moment(value)
    elif not day_in_bounds(value):
        raise ValidationError(DAY_RANGE_MESSAGE, code="out_of_range")


def validate_moment(value: datetime) -> None:
    """A Django validator for a date and time in bounds."""
    if not moment_in_bounds(value):
        raise ValidationError(DAY_RANGE_MESSAGE, code="out_of_range")
