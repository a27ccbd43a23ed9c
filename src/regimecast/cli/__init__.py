"""``regimecast`` command line: thin typer layer over :mod:`regimecast.api` (the workflows).

Every subcommand imports the engine (:mod:`regimecast.api`, the workflows, PyMC, JAX, numba)
inside its function, never at module top: ``regimecast --help`` and ``regimecast data show``
start in a fraction of a second because of it. The same holds in every ``cli`` module."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from regimecast.store import leftovers
from regimecast.cli import data as data_cmd
from regimecast.checks.verdict import fit_level
from regimecast.cli.common import DataDirOpt, EndOpt, ModelOpt, PriorsOpt, echo_verdict, fail, workspace
from regimecast.config.defaults import SAMPLER, SEED
from regimecast.errors import RegimecastError
from regimecast.store.workspace import Workspace

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
    for note in leftovers.sweep(ctx.obj["workspace"]):       # what interrupted commands left
        typer.echo(f"note: {note}", err=True)


SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed and inputs: identical draws).")]
ChainsOpt = Annotated[int, typer.Option("--chains")]
DrawsOpt = Annotated[int, typer.Option("--draws")]
TuneOpt = Annotated[int, typer.Option("--tune")]
BackendOpt = Annotated[str, typer.Option("--backend", help="NUTS backend on the JAX model: nutpie (default, "
                                         "faster here: see benchmarks/RESULTS.md) or numpyro.")]


MassOpt = Annotated[str, typer.Option("--mass-matrix", help="nutpie mass matrix: low_rank (default: diagonal "
                                      "plus low-rank, converges here where diag does not) or diag.")]
InitOpt = Annotated[str, typer.Option("--init", help="map (default: every chain starts at the best of several "
                                      "annealed local modes, reported in the manifest) or jitter (PyMC's jittered point).")]


def _fit(ctx, model, priors, data_dir, end, seed, chains, draws, tune, backend, mass_matrix="low_rank", init="map",
         quiet: bool = False):
    from regimecast import api
    from regimecast.fit.sampler import SamplerSettings

    ws = workspace(ctx)
    try:
        settings = SamplerSettings(seed=seed, backend=backend, chains=chains, draws=draws, tune=tune,
                                   mass_matrix=mass_matrix, init=init)
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
    echo_verdict(fit_level(d), d["reasons"])
    return path, result


@app.command()
def fit(ctx: typer.Context, model: ModelOpt = None, priors: PriorsOpt = "baseline", data_dir: DataDirOpt = None,
        end: EndOpt = None, seed: SeedOpt = SEED, chains: ChainsOpt = SAMPLER["chains"],
        draws: DrawsOpt = SAMPLER["draws"], tune: TuneOpt = SAMPLER["tune"], backend: BackendOpt = SAMPLER["backend"],
        mass_matrix: MassOpt = SAMPLER["mass_matrix"], init: InitOpt = SAMPLER["init"]) -> None:
    """Fit the model to the data with NUTS and write runs/<run_id>/ (prints the run id)."""
    _fit(ctx, model, priors, data_dir, end, seed, chains, draws, tune, backend, mass_matrix, init)


HorizonOpt = Annotated[int, typer.Option("--horizon", help="Months ahead.")]
PathsOpt = Annotated[int, typer.Option("--paths", help="Simulated paths per posterior draw.")]
MaxDrawsOpt = Annotated[int, typer.Option("--max-draws", help="Posterior draws used (evenly thinned).")]
StoreOpt = Annotated[bool, typer.Option("--store/--summary-only", help="Keep every path in forecast.nc, or only "
                                        "the summary statistics (memory and disk independent of the path count).")]
RunArg = Annotated[str, typer.Argument(help="Run id, unique id prefix, path, or 'latest'.")]


def _forecast(ctx, run_ref, horizon, paths, max_draws, seed, store, data_dir=None):
    from rich.progress import Progress

    from regimecast import api
    from regimecast.simulate.forecast import ForecastSettings

    ws = workspace(ctx)
    try:
        settings = ForecastSettings(seed=seed, horizon=horizon, paths=paths, max_draws=max_draws)
        with Progress(transient=True) as bar:
            task = bar.add_task("simulating posterior draws", total=None)
            path, summary = api.forecast(ws, run_ref, settings, store=store, data_dir=data_dir,
                                         progress=lambda n: bar.update(task, advance=n))
    except (RegimecastError, ValueError) as e:
        fail(e)
    S = summary.sizes["draw"]
    typer.echo(f"forecast {path.name}: {S} posterior draws x {paths} paths x {horizon} months "
               f"({S * paths:,} paths) from {summary.attrs['origin_date']}")
    return path


def _report(ctx, run_ref, data_dir=None):
    from regimecast import api

    try:
        out = api.report(workspace(ctx), run_ref, data_dir=data_dir)
    except (RegimecastError, ValueError) as e:
        fail(e)
    typer.echo(f"report {out / 'index.html'}")
    return out


@app.command()
def forecast(ctx: typer.Context, run_ref: RunArg = "latest", horizon: HorizonOpt = 24, paths: PathsOpt = 100,
             max_draws: MaxDrawsOpt = 500, seed: SeedOpt = SEED, store: StoreOpt = True,
             data_dir: DataDirOpt = None) -> None:
    """Simulate joint forward paths of every series and latent factor from a fitted run."""
    _forecast(ctx, run_ref, horizon, paths, max_draws, seed, store, data_dir)


@app.command()
def report(ctx: typer.Context, run_ref: RunArg = "latest", data_dir: DataDirOpt = None) -> None:
    """Write reports/<run_id>/ (index.html, report.md, summary.json) from a forecast run."""
    _report(ctx, run_ref, data_dir)


@app.command()
def run(ctx: typer.Context, model: ModelOpt = None, priors: PriorsOpt = "baseline", data_dir: DataDirOpt = None,
        end: EndOpt = None, seed: SeedOpt = SEED, chains: ChainsOpt = SAMPLER["chains"],
        draws: DrawsOpt = SAMPLER["draws"], tune: TuneOpt = SAMPLER["tune"], backend: BackendOpt = SAMPLER["backend"],
        mass_matrix: MassOpt = SAMPLER["mass_matrix"], init: InitOpt = SAMPLER["init"], horizon: HorizonOpt = 24,
        paths: PathsOpt = 100, max_draws: MaxDrawsOpt = 500) -> None:
    """The main job end to end: data panel, fit, diagnostics verdict, forecast, report. Exit
    code 2 when the fit must not be trusted (the report then says so on its first line)."""
    from regimecast.cli.data import show
    from regimecast.config.defaults import check_chains
    from regimecast.fit.sampler import SamplerSettings
    from regimecast.simulate.forecast import ForecastSettings

    try:      # every setting checked before the data and the fit: --horizon 100000 is not refused after it
        SamplerSettings(seed=seed, backend=backend, chains=check_chains(chains), draws=draws, tune=tune,
                        mass_matrix=mass_matrix, init=init)
        ForecastSettings(seed=seed, horizon=horizon, paths=paths, max_draws=max_draws)
    except ValueError as e:
        fail(e)
    ctx.invoke(show, ctx=ctx, data_dir=data_dir, model=model, end=end)
    path, result = _fit(ctx, model, priors, data_dir, end, seed, chains, draws, tune, backend, mass_matrix, init)
    _forecast(ctx, str(path), horizon, paths, max_draws, seed, True)
    _report(ctx, str(path))
    if not result.diagnostics["trusted"]:
        raise typer.Exit(2)


def main() -> None:
    app()


from regimecast.cli import ledger as ledger_cmd  # noqa: E402  (the forecast ledger)
app.add_typer(ledger_cmd.app, name="ledger")
from regimecast.cli import update as update_cmd  # noqa: E402  (refit on new months)
app.command(name="update")(update_cmd.update)
from regimecast.cli import compare as compare_cmd  # noqa: E402  (narratives side by side)
app.command(name="compare")(compare_cmd.compare)
from regimecast.cli import backtest as backtest_cmd  # noqa: E402  (forecast-calibration backtest)
app.command(name="backtest")(backtest_cmd.backtest)
from regimecast.cli import priors as priors_cmd  # noqa: E402  (prior sets: check, prior predictive)
app.add_typer(priors_cmd.app, name="priors")
from regimecast.cli import diagnose as diagnose_cmd  # noqa: E402  (review of a fit: verdict, diagnostics.html)
app.command(name="diagnose")(diagnose_cmd.diagnose)
