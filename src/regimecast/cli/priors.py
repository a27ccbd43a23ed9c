"""``regimecast priors``: validate a prior file, show the forecast its prior alone implies."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from regimecast.cli.common import DataDirOpt, EndOpt, ModelOpt, fail, workspace
from regimecast.config.defaults import SEED
from regimecast.errors import RegimecastError

app = typer.Typer(help="Prior sets (priors/*.toml): validate a file against the model, show its prior predictive.",
                  no_args_is_help=True)

FileArg = Annotated[str, typer.Argument(help="Prior file, or a name in priors/ (e.g. qe_restart).")]


@app.command()
def check(ctx: typer.Context, file: FileArg, model: ModelOpt = None) -> None:
    """Validate a prior file and its extends chain; list what it changes from its parent.

    Exit 1 with the file, key and value of the first problem."""
    from regimecast import api

    try:
        chk = api.prior_check(workspace(ctx), file, model=model)
    except (RegimecastError, ValueError) as e:
        fail(e)
    ps = chk.priors
    typer.echo(f"prior set '{ps.name}' ({ps.file}): valid")
    if ps.description:
        typer.echo(f"  {ps.description}")
    typer.echo(f"  chain: {' -> '.join(ps.chain)}  (sha256 {ps.sha256[:12]})")
    sources = ps.doc.get("source")
    if sources:
        typer.echo(f"  sources: {', '.join(sources) if isinstance(sources, list) else sources}")
    if chk.parent is None:
        typer.echo("  root prior set (extends nothing)")
        return
    if not chk.changes:
        typer.echo(f"  identical to its parent {chk.parent.file.name}")
        return
    table = Table(title=f"{len(chk.changed_labels)} keys differ from {chk.parent.file.name}", box=box.SIMPLE_HEAD)
    for col in ("block", "key", "parameter", chk.parent.file.stem, ps.file.stem):
        table.add_column(col, justify="right" if col not in ("block", "key", "parameter") else "left")
    for c in chk.changes:
        table.add_row(c.block, c.label, c.param, f"{c.parent:g}", f"{c.value:g}")
    Console().print(table)


@app.command()
def show(ctx: typer.Context, file: FileArg,
         draws: Annotated[int, typer.Option("--draws", help="Parameter draws from the prior.")] = 200,
         paths: Annotated[int, typer.Option("--paths", help="Simulated paths per prior draw.")] = 100,
         horizon: Annotated[int, typer.Option("--horizon", help="Months ahead (must cover every scenario "
                                              "and policy horizon of models/scenarios.toml).")] = 24,
         seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed and inputs: identical "
                                           "numbers; two prior sets share their random numbers).")] = SEED,
         data_dir: DataDirOpt = None, model: ModelOpt = None, end: EndOpt = None) -> None:
    """Prior predictive: policy-state and scenario probabilities from the prior alone.

    Parameters are drawn from the prior; the data enter only through the starting point (the
    last month's levels and covariates, and the state there filtered under each prior draw)."""
    from rich.progress import Progress

    from regimecast import api
    from regimecast.simulate.forecast import ForecastSettings
    from regimecast.simulate.prior_predictive import predictive_tables

    try:
        settings = ForecastSettings(seed=seed, horizon=horizon, paths=paths, max_draws=draws)
        with Progress(transient=True) as bar:
            task = bar.add_task("simulating prior draws", total=draws)
            summary = api.prior_predictive(workspace(ctx), file, settings, model=model, data_dir=data_dir, end=end,
                                           progress=lambda n: bar.update(task, advance=n))
    except (RegimecastError, ValueError) as e:
        fail(e)
    a = summary.attrs
    factor = a["policy_factor"]
    tables = predictive_tables(summary, factor)
    typer.echo(f"prior predictive of '{a['prior_set']}' ({a['prior_chain']}): {draws} prior draws x {paths} paths "
               f"x {horizon} months from {a['origin_date']}, seed {seed}")
    typer.echo(a["note"])
    console = Console()
    states = list(next(iter(tables.policy.values())))
    pol = Table(title=f"P({factor} state) h months ahead (mean over prior draws)", box=box.SIMPLE_HEAD)
    pol.add_column("months", justify="right")
    for s in states:
        pol.add_column(s, justify="right")
    for h, probs in tables.policy.items():
        pol.add_row(str(h), *(f"{probs[s]:.3f}" for s in states))
    console.print(pol)
    scen = Table(title="scenario probabilities (mean over prior draws; 90% band of the per-draw probability)",
                 box=box.SIMPLE_HEAD)
    for col in ("scenario", "months", "P", "5%", "95%", "MCSE"):
        scen.add_column(col, justify="left" if col == "scenario" else "right")
    for name, (h, s) in tables.scenarios.items():
        scen.add_row(name, str(h), f"{s['mean']:.3f}", f"{s['lo']:.3f}", f"{s['hi']:.3f}", f"{s['mcse']:.3f}")
    console.print(scen)
