"""Calendar months as ``YYYY-MM`` strings: parsing with a clear error, arithmetic."""

from __future__ import annotations

import pandas as pd

MAX_HORIZON = 600   # months a forecast may reach (50 years; pandas' dates end in 2262)


def parse_month(month: str, what: str = "month") -> pd.Timestamp:
    """The first day of ``month`` (``YYYY-MM``); ``what`` names the field in the error."""
    try:
        if len(month) != 7:
            raise ValueError
        return pd.Timestamp(f"{month}-01")
    except (ValueError, TypeError):
        raise ValueError(f"{what} {month!r}: expected a month YYYY-MM") from None


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
