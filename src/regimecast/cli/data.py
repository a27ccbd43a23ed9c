"""``regimecast data``: show the monthly panel a model would fit, download FRED series."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from regimecast.data.fred import FRED_CSV_URL, check_series_ids, default_pull_ids
from regimecast.data.fred import pull as fred_pull
from regimecast.data.panel import build_panel
from regimecast.cli.common import DataDirOpt, EndOpt, ModelOpt, fail, model_path, workspace
from regimecast.config.model_file import load_model_config
from regimecast.data.spec import SeriesSpec
from regimecast.errors import RegimecastError

app = typer.Typer(help="Inspect the model's monthly data panel and download FRED series.",
                  no_args_is_help=True)

def _ranges(months: list[str]) -> str:
    """["2003-01", "2003-02", "2003-03", "2025-10"] -> "2003-01..2003-03, 2025-10"."""
    def idx(m: str) -> int:
        return int(m[:4]) * 12 + int(m[5:7])
    spans: list[list[str]] = []
    for m in months:
        if spans and idx(m) == idx(spans[-1][-1]) + 1:
            spans[-1][1:] = [m]
        else:
            spans.append([m])
    return ", ".join("..".join(s) for s in spans)


@app.command()
def show(ctx: typer.Context, data_dir: DataDirOpt = None, model: ModelOpt = None,
         end: EndOpt = None) -> None:
    """Print each series' coverage and missing months, and the common sample."""
    ws = workspace(ctx)
    try:
        cfg = load_model_config(model_path(ws, model))
        panel = build_panel(cfg.series, cfg.sample, ws.data_dir(data_dir), end=end)
    except RegimecastError as e:
        fail(e)
    table = Table(title=f"data panel ({ws.data_dir(data_dir)})", box=box.SIMPLE_HEAD)
    for col in ("series", "FRED id", "units", "first", "last", "months", "missing"):
        table.add_column(col, no_wrap=col in ("first", "last", "months"), overflow="fold",
                         min_width=10 if col == "units" else None,
                         justify="right" if col == "months" else "left")
    for r in panel.summary_rows():
        miss = str(r["n_missing"]) + (f" ({_ranges(r['missing_months'])})"
                                      if r["missing_months"] else "")
        table.add_row(str(r["name"]), str(r["fred_id"]), str(r["units"]), str(r["first"]),
                      str(r["last"]), str(r["n_months"]), miss)
    Console().print(table)
    dropped = [f"{r['fred_id']} {r['dropped_month']}" for r in panel.summary_rows()
               if r["dropped_month"]]
    if dropped:
        typer.echo("incomplete trailing month left out: " + ", ".join(dropped))
    typer.echo(f"common sample {panel.start} .. {panel.end}, "
               f"{panel.observations.sizes['date']} months")


@app.command()
def pull(ctx: typer.Context,
         series: Annotated[list[str] | None, typer.Option(
             "--series", help="FRED id to download (repeatable; default: every source=\"fred\" "
             "series of the model, minus ids included).")] = None,
         data_dir: DataDirOpt = None, model: ModelOpt = None,
         base_url: Annotated[str, typer.Option("--base-url", help="FRED CSV endpoint.")
                             ] = FRED_CSV_URL,
         timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 30.0,
         retries: Annotated[int, typer.Option("--retries", help="Retries on transient errors.")
                            ] = 3,
         ) -> None:
    """Download FRED series into the data directory (validated, written atomically)."""
    ws = workspace(ctx)
    path = model_path(ws, model)
    specs: tuple[SeriesSpec, ...] = ()
    try:
        if series is None or model is not None or path.is_file():
            specs = load_model_config(path).series
    except RegimecastError as e:
        fail(e)
    ids = list(series) if series else default_pull_ids(specs)
    target = ws.data_dir(data_dir)
    try:
        check_series_ids(ids, target)
    except RegimecastError as e:
        fail(e)
    failed = 0
    for sid in ids:
        try:
            r = fred_pull([sid], target, base_url=base_url, timeout=timeout, retries=retries,
                          specs=specs)[0]
        except RegimecastError as e:
            typer.echo(f"{sid:<18} FAILED  {e}", err=True)
            failed += 1
            continue
        typer.echo(f"{sid:<18} ok  {r.n_obs} values  {r.first} .. {r.last}  -> {r.path}")
    if failed:
        typer.echo(f"error: {failed} of {len(ids)} series failed", err=True)
        raise typer.Exit(1)
