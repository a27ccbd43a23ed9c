"""``regimecast ledger``: list the forecast ledger, score it against newer data, add a run."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from regimecast.cli.common import DataDirOpt, fail, workspace
from regimecast.errors import RegimecastError
from regimecast.report.format import num, pct

app = typer.Typer(help="The forecast ledger: every forecast (runs/ledger.sqlite), scored once its horizon "
                       "is observed. Without a subcommand: list it.", invoke_without_command=True)


@app.callback()
def ledger(ctx: typer.Context) -> None:
    """List every recorded forecast with the latest scoring's aggregates."""
    if ctx.invoked_subcommand is not None:
        return
    from regimecast.workflows.ledger import list_forecasts

    ws = workspace(ctx)
    try:
        rows = list_forecasts(ws)
    except RegimecastError as e:
        fail(e)
    if not rows:
        typer.echo(f"ledger {ws.ledger}: no forecast recorded yet")
        return
    table = Table(title=f"forecast ledger ({ws.ledger})", box=box.SIMPLE_HEAD)
    for col in ("id", "run", "recorded (UTC)", "data end", "priors", "horizon", "draws x paths", "verdict",
                "scenarios", "scored", "cover 50%", "cover 90%", "resolved", "Brier"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["forecast_id"]), r["run_id"], r["recorded_utc"], r["data_end"], r["prior_set"],
                      str(r["horizon_months"]), f"{r['posterior_draws']} x {r['paths_per_draw']}",
                      {1: "pass", 0: "fail"}.get(r["trusted"], "?"), str(r["n_scenarios"]),
                      str(r["scored_assets"]), pct(r["scored_cover_50"], 0, missing=""), pct(r["scored_cover_90"], 0, missing=""),
                      str(r["scored_resolved"]), num(r["scored_brier"], missing=""))
    Console().print(table)


@app.command()
def score(ctx: typer.Context, data_dir: DataDirOpt = None) -> None:
    """Score every forecast whose horizon has since been observed.

    CRPS and 50%/90% interval coverage of the assets, Brier score of the scenarios decidable
    from market data; recorded with the data directory, file hashes and months used."""
    from regimecast.workflows.ledger import score_ledger

    ws = workspace(ctx)
    try:
        result = score_ledger(ws, data_dir)
    except (RegimecastError, ValueError) as e:
        fail(e)
    if not result.forecasts:
        typer.echo(f"ledger {ws.ledger}: no forecast recorded yet; nothing scored")
        return
    typer.echo(f"scoring {result.scoring_id}: data {result.data_dir} to {result.data_end}")
    for sha, m in result.files.items():
        files = ", ".join(f"{k} {str(v['sha256'])[:12]}" for k, v in m["files"].items() if v.get("sha256"))
        typer.echo(f"  model {sha[:12]} panel to {m['end']}: {files}")
    assets = Table(title="assets: CRPS (natural units) and interval coverage", box=box.SIMPLE_HEAD)
    for col in ("id", "run", "data end", "series", "horizons scored", "months", "mean CRPS", "cover 50%",
                "cover 90%"):
        assets.add_column(col, overflow="fold")
    scen = Table(title="scenarios", box=box.SIMPLE_HEAD)
    for col in ("id", "run", "scenario", "status", "p", "outcome", "Brier", "months / reason"):
        scen.add_column(col, overflow="fold")
    for r in result.forecasts:
        f = r.forecast
        by_series = defaultdict(list)
        for a in r.assets:
            by_series[a.series].append(a)
        for s, xs in by_series.items():
            assets.add_row(str(f.forecast_id), f.run_id, f.data_end, s, str(len(xs)),
                           f"{xs[0].target_month}..{xs[-1].target_month}",
                           num(np.mean([a.crps for a in xs]), missing=""),
                           *(pct(np.mean([getattr(a, k) for a in xs]), 0, missing="") for k in ("in_50", "in_90")))
        for c in r.scenarios:
            scen.add_row(str(f.forecast_id), f.run_id, c.scenario, c.status, f"{c.prob:.3f}",
                         "" if c.outcome is None else str(c.outcome), num(c.brier, missing=""),
                         c.months if c.status == "resolved" else str(c.reason))
        typer.echo(f"  forecast {f.forecast_id} ({f.run_id}, data end {f.data_end}): {len(r.assets)} asset "
                   f"horizons scored, {r.pending_assets} not yet observed, {r.missing} missing; "
                   f"{sum(c.status == 'resolved' for c in r.scenarios)} scenarios resolved, "
                   f"{sum(c.status == 'unresolved' for c in r.scenarios)} unresolved, "
                   f"{r.pending_scenarios} not yet observed")
    console = Console()
    console.print(assets)
    console.print(scen)


@app.command()
def add(ctx: typer.Context, run_ref: str = typer.Argument("latest", help="Run id, unique id prefix, path, "
                                                          "or 'latest'.")) -> None:
    """Record an existing run's forecast (e.g. one made before the ledger existed)."""
    from regimecast.workflows.ledger import record

    ws = workspace(ctx)
    try:
        path, fid, added = record(ws, run_ref)
    except (RegimecastError, ValueError) as e:
        fail(e)
    typer.echo(f"forecast {fid} ({path.name}): {'added' if added else 'already in the ledger'}")
