"""Money is an integer in the currency's minor unit plus an ISO 4217 code; Babel formats it."""

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
