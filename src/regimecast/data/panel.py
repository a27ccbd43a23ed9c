"""Monthly panel of transformed series, built from a directory of FRED-format CSVs.

Pipeline per series: read and validate the CSV (and its ``minus`` CSV) -> aggregate to
calendar months (``mean``/``last`` of the non-missing values; monthly files keep their
value) -> drop an incomplete trailing month of a daily/weekly file -> subtract ``minus`` ->
transform. Missing months stay NaN: nothing is filled, nothing is dropped.

A trailing month is incomplete when the file's last row (with or without a value) is
before that month's last business day (``BMonthEnd``) for a daily file, or when a further
weekly row would still fall on or before it for a weekly file.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.data.csv import CsvSeries, read_fred_csv
from regimecast.data.spec import SampleSpec, SeriesSpec, parse_month
from regimecast.errors import ConfigError, DataError
from regimecast.months import month_str

LEVEL_HISTORY_MONTHS = 24  # months of levels kept before ``start`` (lagged yoy, 12-month drawdowns)
_LAGS = {"diff": 1, "log_diff_pct": 1, "yoy_pct": 12, "log": 0, "level": 0}


@dataclass(frozen=True)
class SeriesProvenance:
    """Where one file's numbers came from. Dates "YYYY-MM-DD", months "YYYY-MM".

    ``missing_months``: panel months where this series' value is NaN (for the main file: the
    transformed observation; for a ``minus`` file: its monthly level). ``dropped_month``: the
    incomplete trailing month left out, or None.
    """

    fred_id: str
    file: str
    sha256: str | None
    first: str | None
    last: str | None
    n_obs: int
    missing_months: tuple[str, ...]
    dropped_month: str | None
    minus: SeriesProvenance | None = None


@dataclass(frozen=True, eq=False)
class Panel:
    """Transformed monthly data and its provenance.

    ``observations``: float64 DataArray, dims ("date", "series"), month-start datetime64[ns]
    dates ``start..end``, units per series in the ``units`` coordinate, NaN = missing.
    ``levels``: float64 DataArray, dims ("date", "series"): the monthly aggregated level in
    natural units (after ``minus``, ``units_raw`` coordinate) on its own date coordinate,
    ``LEVEL_HISTORY_MONTHS`` months before ``start`` through ``end`` (NaN before a file starts).
    ``provenance`` is keyed by series name.
    """

    observations: xr.DataArray
    levels: xr.DataArray
    specs: tuple[SeriesSpec, ...]
    provenance: dict[str, SeriesProvenance]

    @property
    def start(self) -> str:
        return month_str(self.observations["date"].values[0])

    @property
    def end(self) -> str:
        return month_str(self.observations["date"].values[-1])

    @property
    def missing_mask(self) -> xr.DataArray:
        """Bool DataArray like ``observations``: True where the observation is NaN."""
        return self.observations.isnull()

    def to_dataset(self) -> xr.Dataset:
        """Both arrays (levels' date dimension renamed ``level_date``); provenance and specs
        as JSON strings in attrs."""
        ds = xr.Dataset({"observations": self.observations,
                         "levels": self.levels.rename(date="level_date")})
        ds.attrs.update(start=self.start, end=self.end,
                        provenance=json.dumps({k: asdict(v) for k, v in self.provenance.items()}),
                        specs=json.dumps([asdict(s) for s in self.specs]))
        return ds

    def summary_rows(self) -> list[dict[str, object]]:
        """Per series: name, fred_id (``A-B`` with minus), units, first/last observation date
        in the file, months with a value in the panel, missing count and months."""
        rows = []
        for spec in self.specs:
            p = self.provenance[spec.name]
            n = int(self.observations.sel(series=spec.name).notnull().sum())
            rows.append({"name": spec.name,
                         "fred_id": spec.fred_id + (f"-{spec.minus}" if spec.minus else ""),
                         "units": spec.units, "first": p.first, "last": p.last, "n_months": n,
                         "n_missing": len(p.missing_months),
                         "missing_months": list(p.missing_months),
                         "dropped_month": p.dropped_month})
        return rows


@dataclass(frozen=True, eq=False)
class _Monthly:
    csv: CsvSeries | None
    file: Path
    level: pd.Series  # month-start index -> float, contiguous months
    dropped: str | None


def build_panel(series: Sequence[SeriesSpec], sample: SampleSpec, data_dir: Path, *,
                end: str | None = None, today: dt.date | None = None) -> Panel:
    """Build the panel from ``data_dir/<FRED id>.csv`` files; reads only, writes nothing.

    The panel runs from ``sample.start`` to the common end (the earliest last valid month
    over the non-optional series), or to ``end`` ("YYYY-MM") when that is earlier.
    """
    data_dir = Path(data_dir)
    start = _ts(parse_month("sample", "sample.start", sample.start))
    loaded = {s.name: _load(s, data_dir, today) for s in series}
    levels = {s.name: _combine(s, *loaded[s.name]) for s in series}
    obs = {s.name: transform_levels(s, levels[s.name]) for s in series}
    required = [s for s in series if not s.optional]
    if not required:
        raise ConfigError("series", "series", [s.name for s in series],
                          "at least one series must be non-optional")
    _check_lag(required, loaded, sample.max_lag_months)
    stop, limiter = _common_end(required, obs, loaded)
    if end is not None:
        want = _ts(parse_month("--end", "end", end))
        if want > stop:
            raise DataError(loaded[limiter][0].file, limiter, None, end,
                            f"requested end is after the common end {month_str(stop)} "
                            f"(series '{limiter}' ends there)")
        stop = want
    n = (stop.year - start.year) * 12 + stop.month - start.month + 1
    if n < sample.min_months:
        raise DataError(data_dir, "sample", None, f"{sample.start}..{month_str(stop)}",
                        f"sample has {max(n, 0)} months, needs at least "
                        f"min_months = {sample.min_months}")
    for s in required:
        first = obs[s.name].first_valid_index()
        if first is None or first > start:
            m = loaded[s.name][0]
            raise DataError(m.file, s.fred_id, None, m.csv.first.date().isoformat() if m.csv
                            and m.csv.first is not None else None,
                            f"sample start {sample.start} is before the series' first "
                            f"transformable month {month_str(first) if first else 'none'} "
                            f"(transform '{s.transform}')")
    dates = pd.date_range(start, stop, freq="MS", unit="ns", name="date")
    ldates = pd.date_range(start - pd.DateOffset(months=LEVEL_HISTORY_MONTHS), stop,
                           freq="MS", unit="ns", name="date")
    names = [s.name for s in series]
    coords = {"series": names, "fred_id": ("series", [s.fred_id for s in series]),
              "minus": ("series", [s.minus or "" for s in series]),
              "role": ("series", [s.role for s in series])}
    o = xr.DataArray(np.column_stack([obs[k].reindex(dates).to_numpy("float64") for k in names]),
                     dims=("date", "series"), coords={"date": dates, **coords,
                     "units": ("series", [s.units for s in series])}, name="observations")
    lv = xr.DataArray(np.column_stack([levels[k].reindex(ldates).to_numpy("float64")
                                       for k in names]),
                      dims=("date", "series"), coords={"date": ldates, **coords,
                      "units_raw": ("series", [s.units_raw for s in series])}, name="levels")
    prov = {s.name: _provenance(s, loaded[s.name], obs[s.name], dates) for s in series}
    return Panel(o, lv, tuple(series), prov)


def _ts(month: str) -> pd.Timestamp:
    return pd.Timestamp(f"{month}-01")


def _frequency(index: pd.DatetimeIndex) -> str:
    if index.size < 2:
        return "monthly"
    gap = float(np.median(np.diff(index.values).astype("timedelta64[D]").astype("int64")))
    return "monthly" if gap >= 28 else "weekly" if gap >= 5 else "daily"


def _read_monthly(fred_id: str, spec: SeriesSpec, data_dir: Path, today: dt.date | None,
                  main: bool) -> _Monthly:
    path = data_dir / f"{fred_id}.csv"
    if not path.is_file():
        if spec.optional:
            return _Monthly(None, path, pd.Series(dtype="float64"), None)
        how = ("its source is 'file': place the file in the data directory"
               if spec.source == "file" else "run `regimecast data pull` or place the file there")
        raise DataError(path, fred_id, None, str(path),
                        f"required series '{spec.name}' is missing from {data_dir}: {how}")
    cs = read_fred_csv(path, fred_id, kind=spec.kind,
                       transform=spec.transform if main and not spec.minus else None, today=today,
                       root=data_dir)
    v = cs.values
    agg = v.groupby(v.index.to_period("M"))
    monthly = agg.mean() if spec.aggregation == "mean" else agg.last()
    dropped = None
    freq, last_row = _frequency(v.index), cs.last_row
    bme = last_row.to_period("M").to_timestamp() + pd.offsets.BMonthEnd(0)
    if (freq == "daily" and last_row < bme) or (
            freq == "weekly" and last_row + pd.Timedelta(days=7) <= bme):
        dropped = month_str(last_row)
        monthly = monthly.iloc[:-1]
    if monthly.size:
        monthly = monthly.reindex(pd.period_range(monthly.index[0], monthly.index[-1], freq="M"))
        monthly.index = monthly.index.to_timestamp().as_unit("ns")
    return _Monthly(cs, path, monthly.astype("float64"), dropped)


def _load(spec: SeriesSpec, data_dir: Path, today: dt.date | None
          ) -> tuple[_Monthly, _Monthly | None]:
    main = _read_monthly(spec.fred_id, spec, data_dir, today, True)
    minus = _read_monthly(spec.minus, spec, data_dir, today, False) if spec.minus else None
    return main, minus


def _combine(spec: SeriesSpec, main: _Monthly, minus: _Monthly | None) -> pd.Series:
    level = main.level if minus is None else main.level.sub(minus.level)
    if spec.takes_log and (level <= 0).any():
        bad = level[level <= 0]
        raise DataError(main.file, spec.fred_id, None, float(bad.iloc[0]),
                        f"monthly level {month_str(bad.index[0])} is not positive but the "
                        f"'{spec.transform}' transform takes a log")
    if level.size:
        level = level.reindex(pd.date_range(level.index[0], level.index[-1], freq="MS",
                                            unit="ns"))
    return level


def transform_levels(spec: SeriesSpec, x: pd.Series) -> pd.Series:
    """Apply the spec's transform to the contiguous monthly level ``x``."""
    t = spec.transform
    if t == "diff":
        return x.diff()
    if t == "log_diff_pct":
        return 100.0 * np.log(x).diff()
    if t == "log":
        return np.log(x)
    if t == "yoy_pct":
        return 100.0 * (x / x.shift(12) - 1.0)
    return x.copy()


def _check_lag(required: Sequence[SeriesSpec], loaded: dict, max_lag: int) -> None:
    files = [m for pair in loaded.values() for m in pair if m is not None and m.level.size]
    lasts = {m.file: m.level.last_valid_index() for m in files}
    newest = max((m for m in files if lasts[m.file] is not None), key=lambda m: lasts[m.file],
                 default=None)
    if newest is None:
        return  # no values anywhere: reported by _common_end
    top = lasts[newest.file]
    for s in required:
        for m in (x for x in loaded[s.name] if x is not None and x.csv is not None):
            last = lasts.get(m.file)
            if last is None:
                continue  # no values at all: reported by _common_end
            lag = (top.year - last.year) * 12 + top.month - last.month
            if lag > max_lag:
                raise DataError(m.file, m.csv.series_id, None, m.csv.last.date().isoformat(),
                                f"stale file: last complete month {month_str(last)}"
                                f" lags the newest series {newest.csv.series_id} "
                                f"({month_str(top)}, last date {newest.csv.last.date().isoformat()}) "
                                f"by {lag} months > max_lag_months = {max_lag}")


def _common_end(required: Sequence[SeriesSpec], obs: dict[str, pd.Series],
                loaded: dict) -> tuple[pd.Timestamp, str]:
    ends = {s.name: obs[s.name].last_valid_index() for s in required}
    for s in required:
        if ends[s.name] is None:
            raise DataError(loaded[s.name][0].file, s.fred_id, None, None,
                            f"series '{s.name}' has no transformable values")
    name = min(ends, key=lambda k: ends[k])
    return ends[name], name


def _provenance(spec: SeriesSpec, pair: tuple[_Monthly, _Monthly | None], obs: pd.Series,
                dates: pd.DatetimeIndex) -> SeriesProvenance:
    def one(m: _Monthly, values: pd.Series, fred_id: str, minus=None) -> SeriesProvenance:
        cs = m.csv
        day = lambda t: t.date().isoformat() if t is not None else None  # noqa: E731
        missing = values.reindex(dates)
        return SeriesProvenance(
            fred_id=fred_id, file=str(m.file), sha256=cs.sha256 if cs else None,
            first=day(cs.first) if cs else None, last=day(cs.last) if cs else None,
            n_obs=cs.n_obs if cs else 0,
            missing_months=tuple(month_str(t) for t in missing.index[missing.isna()]),
            dropped_month=m.dropped, minus=minus)

    main, minus = pair
    sub = one(minus, minus.level, spec.minus) if minus is not None else None
    return one(main, obs, spec.fred_id, sub)
