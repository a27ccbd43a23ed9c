"""Calendar months as ``YYYY-MM`` strings: parsing with a clear error, arithmetic."""

from __future__ import annotations

import re

import pandas as pd

MAX_HORIZON = 600   # months a forecast may reach (50 years; pandas' dates end in 2262)


MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def is_month(value: object) -> bool:
    """Whether ``value`` is a month string ``YYYY-MM`` (month 01..12): the one rule every
    month in a file, an option or a record is checked against."""
    m = MONTH.match(value) if isinstance(value, str) else None
    return m is not None and 1 <= int(m.group(2)) <= 12


def parse_month(month: str, what: str = "month") -> pd.Timestamp:
    """The first day of ``month`` (``YYYY-MM``); ``what`` names the field in the error."""
    if not is_month(month):
        raise ValueError(f"{what} {month!r}: expected a month YYYY-MM")
    return pd.Timestamp(f"{month}-01")


def month_str(t) -> str:
    """``YYYY-MM`` of a timestamp (or anything ``pandas.Timestamp`` accepts)."""
    return f"{pd.Timestamp(t):%Y-%m}"


def add_months(month: str, n: int) -> str:
    """``month`` plus ``n`` months (``n`` may be negative)."""
    return month_str(parse_month(month) + pd.DateOffset(months=n))


def months_between(a: str, b: str) -> int:
    """Whole months from ``a`` to ``b`` (b - a)."""
    ta, tb = parse_month(a), parse_month(b)
    return (tb.year - ta.year) * 12 + tb.month - ta.month
