"""Text that people typed, made safe for a CSV cell that a spreadsheet will open."""

# A cell starting with one of these is run as a formula by spreadsheets (CSV injection, OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str | None) -> str:
    """``value`` for a CSV cell: empty for None, and a leading apostrophe where a spreadsheet would
    otherwise read a formula."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value
