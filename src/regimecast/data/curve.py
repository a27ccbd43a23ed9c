"""The fed funds path the Treasury curve prices: forward rates over the 0-3, 3-6, 6-12 and
12-24 months after the forecast origin, from the constant-maturity yields DGS3MO, DGS6MO, DGS1
and DGS2 read from the data directory (optional series: none of them is part of the model).

What the forward is, and what it is not: it is the rate the market *prices* for each window,
not its expectation of the fed funds rate. It includes the term premium (positive or negative,
growing with maturity) and the spread between Treasury yields and the fed funds rate (bills
often trade some basis points from fed funds, with bill supply and demand for safe assets).

Conventions and choices:

* **Which value of the origin month.** The last value of the origin month (its month-end
  curve), required to be complete by the panel's rule (the file runs to the month's last
  business day). The model's fed funds series is the monthly mean of daily rates, so its
  average over the window's months ``t1+1..t2`` is the average overnight rate from the end of
  the origin month to the end of month ``t2``: exactly the span a month-end curve's forward
  prices. A month-average curve would price spans starting half a month early. The model
  itself reads Treasury yields at month-end (``y10``: aggregation ``last``).
* **Yields to rates.** The CMT yields are bond-equivalent, in percent: compounding twice a
  year, and simple interest over a maturity of at most half a year (the bill convention). They
  are converted to continuously compounded rates and treated as zero-coupon yields: the 1- and
  2-year CMT yields are par yields, which differ from zero yields by about 1 bp per 50 bp of
  slope between 6 months and 2 years (twice that in the 12-24 month forward).
* **Forward.** f(t1, t2) = (r2 t2 - r1 t1) / (t2 - t1) with continuously compounded r,
  then expressed in the fed funds rate's convention: percent per annum, simple interest on an
  actual/360 basis, rolled over daily: R = 360 (exp(f / 365) - 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.data.csv import read_fred_csv
from regimecast.months import parse_month

# (FRED id, maturity in months) of the yields read, shortest first
CURVE_SERIES = (("DGS3MO", 3), ("DGS6MO", 6), ("DGS1", 12), ("DGS2", 24))
# (start, end) months after the origin month of each forward window
WINDOWS = ((0, 3), (3, 6), (6, 12), (12, 24))
FED_FUNDS_IDS = ("FEDFUNDS", "EFFR")  # FRED ids of the model's fed funds series
CURVE_KIND = "percent_rate"           # the CSV reader's percent-versus-decimal check applies
MONTHS_PER_YEAR = 12
PERCENT = 100.0
COUPONS_PER_YEAR = 2       # bond-equivalent yields compound semiannually
DAYS_PER_YEAR = 365        # calendar days a continuously compounded rate accrues over
FED_FUNDS_DAY_BASIS = 360  # fed funds: simple interest, actual/360, one day at a time


@dataclass(frozen=True)
class MarketPath:
    """The curve at the origin month and the forwards it prices.

    origin: the forecast origin month ``YYYY-MM`` (the model's last month).
    yields: dims ("maturity",), maturity in months (3, 6, 12, 24); bond-equivalent yield in
        percent; coordinates ``series`` (FRED id) and ``date`` (the day read, datetime64).
    forward: dims ("window",), labels "0-3", "3-6", ...; percent per annum in the fed funds
        convention; coordinates ``start`` and ``end`` (months after the origin month).
    """

    origin: str
    yields: xr.DataArray
    forward: xr.DataArray


def window_label(start: int, end: int) -> str:
    return f"{start}-{end}"


def continuous_rate(yield_pct, months):
    """Bond-equivalent yield (percent) of a maturity of ``months`` -> continuously compounded
    rate (percent): compounding every half year, simple interest up to a half year."""
    y, t = np.asarray(yield_pct, float) / PERCENT, np.asarray(months, float) / MONTHS_PER_YEAR
    periods = COUPONS_PER_YEAR * t
    log_growth = np.where(periods <= 1, np.log1p(y * t), periods * np.log1p(y / COUPONS_PER_YEAR))
    return PERCENT * log_growth / t


def fed_funds_equivalent(rate_pct):
    """Continuously compounded rate (percent) -> the overnight rate (percent, actual/360,
    rolled daily) that grows money at the same pace."""
    r = np.asarray(rate_pct, float) / PERCENT
    return PERCENT * FED_FUNDS_DAY_BASIS * np.expm1(r / DAYS_PER_YEAR)


def forward_rates(rates: xr.DataArray, windows=WINDOWS) -> xr.DataArray:
    """Continuously compounded forwards (percent) over ``windows`` from continuously compounded
    zero rates ``rates`` (percent, dims ("maturity",) in months; the rate to 0 months is not
    needed): dims ("window",) with coordinates ``start`` and ``end`` (months)."""
    def growth(m: int) -> float:   # r(t) t, in percent x years
        return 0.0 if m == 0 else float(rates.sel(maturity=m)) * m / MONTHS_PER_YEAR

    f = [(growth(b) - growth(a)) / ((b - a) / MONTHS_PER_YEAR) for a, b in windows]
    return xr.DataArray(f, dims=("window",), name="forward",
                        coords={"window": [window_label(a, b) for a, b in windows],
                                "start": ("window", [a for a, _ in windows]),
                                "end": ("window", [b for _, b in windows])})


def market_path(data_dir: str | Path, origin: str) -> tuple[MarketPath | None, str | None]:
    """``(path, None)``, or ``(None, reason)`` when a file is absent or has no value for the
    complete origin month ``origin`` (``YYYY-MM``). A malformed file is a
    :class:`~regimecast.errors.DataError` naming the file, field and value."""
    data_dir = Path(data_dir)
    month = parse_month(origin, "origin month")
    last_day = month + pd.offsets.BMonthEnd(0)
    values, dates = [], []
    for sid, _ in CURVE_SERIES:
        path = data_dir / f"{sid}.csv"
        if not path.is_file():
            return None, f"{path} is absent"
        cs = read_fred_csv(path, sid, kind=CURVE_KIND, root=data_dir)
        v = cs.values.loc[month:last_day].dropna()
        if v.empty:
            last = f"its last value is on {cs.last:%Y-%m-%d}" if cs.last is not None else "it has no value"
            return None, f"{path} has no value in {origin} ({last})"
        if cs.last_row < last_day:
            return None, (f"{path} ends on {cs.last_row:%Y-%m-%d}, before the last business day of "
                          f"{origin} ({last_day:%Y-%m-%d}): the month is incomplete")
        values.append(float(v.iloc[-1]))
        dates.append(v.index[-1])
    maturities = [m for _, m in CURVE_SERIES]
    yields = xr.DataArray(values, dims=("maturity",), name="yield",
                          coords={"maturity": maturities, "series": ("maturity", [s for s, _ in CURVE_SERIES]),
                                  "date": ("maturity", pd.DatetimeIndex(dates).as_unit("ns"))})
    rates = yields.copy(data=continuous_rate(yields.values, maturities))
    fwd = forward_rates(rates)
    return MarketPath(origin, yields, fwd.copy(data=fed_funds_equivalent(fwd.values))), None

