"""Money is an integer in the currency's minor unit plus an ISO 4217 code; Babel formats it."""

import re
from decimal import Decimal
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies
from django.core.exceptions import ValidationError

# Currencies that are not legal tender for a sale (funds, metals, testing codes).
_NOT_FOR_SALE = {"XAU", "XAG", "XPD", "XPT", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA"}


@cache
def currencies() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if len(code) == 3 and code not in _NOT_FOR_SALE)


def validate_currency(value: str) -> None:
    if value not in currencies():
        raise ValidationError(f"'{value}' is not an ISO 4217 currency code.", code="invalid_currency")


def exponent(currency: str) -> int:
    return int(get_currency_precision(currency))


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """1999 USD → '$19.99'; 50000 UGX → 'UGX50,000'; 1234 KWD → 'KWD1.234'."""
    digits = exponent(currency)
    value = Decimal(amount).scaleb(-digits)
    return str(format_currency(value, currency, locale=locale, currency_digits=True))


MAX_AMOUNT = 10**12  # a trillion minor units; anything above is a typo, not a price

# What a person types for an amount: digits with an optional decimal part, an optional sign (so
# that "-5" gets the "positive amount" answer). Never an exponent, "Infinity" or "NaN": Decimal
# takes those, and "Infinity" or "1e309" then cannot be a whole number of minor units.
_TYPED_AMOUNT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_TYPED_AMOUNT_MAX_LENGTH = 30


def parse_amount(raw: str, currency: str) -> int | None:
    """An amount as people write it ("12.50", "1,234.5") in the currency's minor units, exactly:
    '12.50' USD → 1250; '' → None (the caller decides what nothing means).

    Raises ValueError with a sentence for the field: not a plain decimal number (words, exponents,
    "Infinity", "NaN"), not positive, more decimals than the currency has, or above MAX_AMOUNT.
    Every amount typed on a page goes through here (refunds, prices, discounts, filters)."""
    text = raw.strip().replace(",", "")
    if not text:
        return None
    if len(text) > _TYPED_AMOUNT_MAX_LENGTH or not _TYPED_AMOUNT.fullmatch(text):
        raise ValueError("Enter an amount such as 12.50.")
    digits = exponent(currency)
    value = Decimal(text).scaleb(digits)
    if value != value.to_integral_value() or value <= 0:
        raise ValueError(f"Enter a positive amount with at most {digits} decimal places.")
    if value > MAX_AMOUNT:
        raise ValueError(f"Enter an amount of at most {format_money(MAX_AMOUNT, currency)}.")
    return int(value)
