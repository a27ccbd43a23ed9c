"""``regimecast`` command line: thin typer layer over :mod:`regimecast.api`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from regimecast.cli import data as data_cmd
from regimecast.cli.common import DataDirOpt, EndOpt, ModelOpt, PriorsOpt, fail, workspace
from regimecast.errors import RegimecastError
from regimecast.workspace import Workspace

app = typer.Typer(help="Bayesian regime-switching Monte Carlo forecasts of macro markets.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(data_cmd.app, name="data")


@app.callback()
def _root(ctx: typer.Context,
          ws: Annotated[Path | None, typer.Option("--workspace", help="Workspace root holding models/, priors/, "
                                                   "runs/, reports/ (default: current directory).")] = None) -> None:
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    ctx.obj = {"workspace": Workspace.at(ws)}


SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed and inputs: identical draws).")]
ChainsOpt = Annotated[int, typer.Option("--chains")]
DrawsOpt = Annotated[int, typer.Option("--draws")]
TuneOpt = Annotated[int, typer.Option("--tune")]
BackendOpt = Annotated[str, typer.Option("--backend", help="NUTS backend on the JAX model: nutpie (default, "
                                         "faster here: see benchmarks/RESULTS.md) or numpyro.")]


def _fit(ctx, model, priors, data_dir, end, seed, chains, draws, tune, backend, quiet: bool = False):
    from regimecast import api
    from regimecast.fit import SamplerSettings

    ws = workspace(ctx)
    try:
        settings = SamplerSettings(seed=seed, backend=backend, chains=chains, draws=draws, tune=tune)
        path, result = api.fit(ws, settings, model=model, priors=priors, data_dir=data_dir, end=end,
                               progressbar=not quiet)
    except (RegimecastError, ValueError) as e:
        fail(e)
    d = result.diagnostics
    typer.echo(f"run {path.name}")
    typer.echo(f"  sampled in {result.wall_time_s:.1f} s ({backend}, {chains} chains x {draws} draws, {tune} tune)")
    typer.echo(f"  max R-hat {d['max_rhat']:.3f}  min ESS bulk {d['min_ess_bulk']:.0f}  tail {d['min_ess_tail']:.0f}"
               f"  divergences {d['divergences']}  min BFMI {d['min_bfmi']:.2f}")
    agree = ", ".join(f"{s} {v['agree']:.0%}" for s, v in result.history.items() if v["months"])
    typer.echo(f"  policy history agreement: {agree}")
    if d["trusted"]:
        typer.echo("  verdict: diagnostics pass")
    else:
        typer.echo("  verdict: DO NOT TRUST this run: " + "; ".join(d["reasons"]))
    return path, result


@app.command()
def fit(ctx: typer.Context, model: ModelOpt = None, priors: PriorsOpt = "baseline", data_dir: DataDirOpt = None,
        end: EndOpt = None, seed: SeedOpt = 20261123, chains: ChainsOpt = 4, draws: DrawsOpt = 1000,
        tune: TuneOpt = 1000, backend: BackendOpt = "nutpie") -> None:
    """Fit the model to the data with NUTS and write runs/<run_id>/ (prints the run id)."""
    _fit(ctx, model, priors, data_dir, end, seed, chains, draws, tune, backend)


@app.command()
def run(ctx: typer.Context, model: ModelOpt = None, priors: PriorsOpt = "baseline", data_dir: DataDirOpt = None,
        end: EndOpt = None, seed: SeedOpt = 20261123, chains: ChainsOpt = 4, draws: DrawsOpt = 1000,
        tune: TuneOpt = 1000, backend: BackendOpt = "nutpie") -> None:
    """The main job end to end: data panel, fit, diagnostics verdict. Exit code 2 when the fit
    must not be trusted."""
    from regimecast.cli.data import show

    ctx.invoke(show, ctx=ctx, data_dir=data_dir, model=model, end=end)
    _, result = _fit(ctx, model, priors, data_dir, end, seed, chains, draws, tune, backend)
    if not result.diagnostics["trusted"]:
        raise typer.Exit(2)


def main() -> None:
    app()
