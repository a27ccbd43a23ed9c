"""``regimecast compare PRIORS...``: fit prior sets (narratives) on the same data and compare."""

from __future__ import annotations

from typing import Annotated

import typer

from regimecast.checks.verdict import fit_headline
from regimecast.cli.common import DataDirOpt, EndOpt, fail, workspace
from regimecast.config.defaults import SAMPLER, SEED
from regimecast.errors import RegimecastError


def compare(ctx: typer.Context,
            priors: Annotated[list[str] | None, typer.Argument(help="Prior sets (names in priors/ or files).")] = None,
            runs: Annotated[list[str] | None, typer.Option("--run", help="A fitted run to include instead of "
                                                           "fitting (repeatable).")] = None,
            data_dir: DataDirOpt = None, end: EndOpt = None,
            seed: Annotated[int, typer.Option("--seed")] = SEED,
            chains: Annotated[int, typer.Option("--chains")] = SAMPLER["chains"],
            draws: Annotated[int, typer.Option("--draws")] = SAMPLER["draws"],
            tune: Annotated[int, typer.Option("--tune")] = SAMPLER["tune"],
            lfo_months: Annotated[int, typer.Option("--lfo-months", help="Months scored one step ahead (LFO).")] = 36,
            ) -> None:
    """Fit each prior set on the same data and report PSIS-LOO and leave-future-out ELPD,
    stacking weights and the scenario probabilities side by side (reports/compare/<id>/)."""
    from regimecast import api
    from regimecast.fit.sampler import SamplerSettings

    ws = workspace(ctx)
    try:
        settings = SamplerSettings(seed=seed, chains=chains, draws=draws, tune=tune)
        out, c = api.compare(ws, list(priors or []), settings, runs_=list(runs or []), data_dir=data_dir, end=end,
                             lfo_months=lfo_months)
    except (RegimecastError, ValueError) as e:
        fail(e)
    typer.echo(f"{'prior set':22s} {'ELPD LOO':>16s} {'weight':>7s} {'LFO ELPD':>16s}  diagnostics")
    for n, lo in c["loo"].items():
        lf = c["lfo"][n]
        ok = fit_headline(c["runs"][n]["diagnostics"])
        typer.echo(f"{n:22s} {lo['elpd']:9.1f} ± {lo['se']:4.1f} {c['weights'][n]:7.2f} "
                   f"{lf['elpd']:9.1f} ± {lf['se']:4.1f}  {ok}")
    typer.echo(f"report {out / 'index.html'}")
