"""Data layer: series specs, FRED CSV reading/validation, FRED downloads, the monthly panel."""

from regimecast.data.csv import CsvSeries, parse_fred_csv, read_fred_csv
from regimecast.data.fred import FRED_CSV_URL, PullResult, default_pull_ids, pull
from regimecast.data.panel import Panel, SeriesProvenance, build_panel
from regimecast.data.spec import SampleSpec, SeriesSpec, parse_sample, parse_series

__all__ = [
    "FRED_CSV_URL", "CsvSeries", "Panel", "PullResult", "SampleSpec", "SeriesProvenance",
    "SeriesSpec", "build_panel", "default_pull_ids", "parse_fred_csv", "parse_sample",
    "parse_series", "pull", "read_fred_csv",
]
