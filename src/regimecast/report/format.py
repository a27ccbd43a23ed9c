"""Number formatting shared by every report page and every command's table: one helper per
shape of number, each writing a missing or non-finite value as ``missing`` ("n/a" on pages;
the ledger table leaves the cell empty)."""

from __future__ import annotations

import math

PROBABILITY_DECIMALS = 1  # probabilities are shown as percentages with this many decimals
MISSING = "n/a"


def finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def pct(p, decimals: int = PROBABILITY_DECIMALS, missing: str = MISSING) -> str:
    """A probability or share in [0, 1] as a percentage: 0.1234 -> "12.3%"."""
    return missing if not finite(p) else f"{float(p) * 100:.{decimals}f}%"


def pp(p, missing: str = MISSING) -> str:
    """A probability's standard error in percentage points, one decimal more than :func:`pct`."""
    return missing if not finite(p) else f"{float(p) * 100:.{PROBABILITY_DECIMALS + 1}f}"


def num(x, decimals: int | None = None, missing: str = MISSING) -> str:
    """``decimals`` fixed decimals with thousands separators, else 4 significant digits."""
    if not finite(x):
        return missing
    if decimals is not None:
        return f"{float(x):,.{decimals}f}"
    return f"{float(x):.4g}"


def signed(x, decimals: int = 3, missing: str = MISSING) -> str:
    """With its sign, e.g. a skill score: +0.123."""
    return missing if not finite(x) else f"{float(x):+.{decimals}f}"


def short(x, digits: int = 3, missing: str = MISSING) -> str:
    """Compact: whole numbers and |x| >= 1000 with separators and no decimals, |x| >= 1 with
    ``digits`` significant digits, smaller values with ``digits`` decimals."""
    if not finite(x):
        return missing
    x = float(x)
    if x.is_integer() or abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"
