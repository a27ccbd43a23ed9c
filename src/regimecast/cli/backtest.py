"""``regimecast backtest``: refit at each origin, forecast, score against what happened and
against four baselines; resumable; serial or on Dask; report in reports/backtest/."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from regimecast.checks.verdict import HEADLINES, fit_level
from regimecast.cli.common import DataDirOpt, ModelOpt, PriorsOpt, fail, workspace
from regimecast.config.defaults import SAMPLER, SEED
from regimecast.errors import RegimecastError
from regimecast.report.format import num, signed



def backtest(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", help="First origin month YYYY-MM (origins before the model's "
                                       "first feasible one are listed as skipped).")],
    every: Annotated[int, typer.Option("--every", help="Months between origins.")] = 6,
    horizons: Annotated[str, typer.Option("--horizons", help="Comma-separated months after the origin to score.")]
    = "1,3,12",
    end: Annotated[str | None, typer.Option("--end", help="Last origin YYYY-MM (default: the last month at which "
                                            "the shortest horizon has been observed).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Base seed; each origin's seeds derive from it and the "
                                      "origin month.")] = SEED,
    chains: Annotated[int, typer.Option("--chains")] = SAMPLER["chains"],
    draws: Annotated[int, typer.Option("--draws")] = SAMPLER["draws"],
    tune: Annotated[int, typer.Option("--tune")] = SAMPLER["tune"],
    max_retries: Annotated[int, typer.Option("--max-retries", help="Refits of an origin whose fit fails a "
                                             "diagnostics check, each with --retry-factor times the draws.")] = 1,
    retry_factor: Annotated[int, typer.Option("--retry-factor")] = 2,
    paths: Annotated[int, typer.Option("--paths", help="Simulated paths per posterior draw.")] = 20,
    max_draws: Annotated[int, typer.Option("--max-draws", help="Posterior draws used (evenly thinned).")] = 600,
    backend: Annotated[str, typer.Option("--backend")] = "nutpie",
    mass_matrix: Annotated[str, typer.Option("--mass-matrix")] = "low_rank",
    init: Annotated[str, typer.Option("--init")] = "map",
    model: ModelOpt = None,
    priors: PriorsOpt = "baseline",
    data_dir: DataDirOpt = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Address of a running Dask scheduler "
                                                  "(default: a LocalCluster on this machine).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="LocalCluster worker processes (default: one "
                                                "per CPU, at most one per origin).")] = None,
    serial: Annotated[bool, typer.Option("--serial", help="Run the origins one after another in this process.")]
    = False,
) -> None:
    """Forecast-calibration backtest against baselines (random walk, iid Gaussian, Markov
    switching, GARCH(1,1), historical simulation): CRPS, log score, coverage, PIT, Brier, and
    the policy state at 3/6/12 months against the Fed's record; resumable (finished origins in
    runs/backtest/<config hash>/ are skipped); report in reports/backtest/. Every refit runs
    the production sampler settings; a refit that fails the diagnostics is refitted longer, and
    one still failing is listed and left out of the scores."""
    from regimecast.workflows import backtest as bt
    from regimecast.workflows import backtest_origin as bto
    from regimecast.report import backtest as rep

    ws = workspace(ctx)
    if serial and scheduler:
        fail(ValueError("--serial and --scheduler exclude each other"))
    try:
        hs = tuple(int(h) for h in horizons.split(",") if h.strip())
        settings = bto.BacktestSettings(start=start, every=every, horizons=hs, seed=seed, end=end, chains=chains,
                                       draws=draws, tune=tune, paths=paths, max_draws=max_draws, backend=backend,
                                       max_retries=max_retries, retry_factor=retry_factor,
                                       mass_matrix=mass_matrix, init=init)
        inputs = bt.load_inputs(ws, model=model, priors=priors, data_dir=data_dir)
        todo, skipped = bto.origins(settings, inputs.config, inputs.full.end)
        where = "serially" if serial else (f"on the Dask scheduler {scheduler}" if scheduler else "on a LocalCluster")
        typer.echo(f"backtest: {len(todo)} origins {todo[0] if todo else ''}..{todo[-1] if todo else ''} every "
                   f"{every} months, horizons {', '.join(map(str, settings.horizons))}; refits {chains} chains x "
                   f"{draws} draws ({tune} tune), {where}")
        for o, why in skipped.items():
            typer.echo(f"  skipped {o}: {why}")
        result, summary, out = bt.backtest(ws, settings, serial=serial, scheduler=scheduler, n_workers=workers,
                                           progress=_progress, reproduce=_reproduce(settings, model, priors, data_dir),
                                           loaded=inputs)
    except (RegimecastError, ValueError) as e:
        fail(e)
    typer.echo(f"results {result.directory} ({len(result.computed)} computed, {len(result.reused)} reused, "
               f"{result.wall_time_s:.0f} s)")
    if summary is None:
        fail(bto.BacktestError("no origin finished: " + "; ".join(f"{o}: {m}" for o, m in result.failed.items())))
    _print_skill(summary)
    typer.echo("where the engine is worse:")
    for line in summary["engine_worse"]:
        typer.echo(f"  - {line}")
    if summary["untrusted_origins"]:
        typer.echo(f"{len(summary['untrusted_origins'])} of {len(summary['origins'])} origin fits did not pass the "
                   "sampler diagnostics even refitted longer: listed in the report and left out of every score "
                   f"({summary['n_scored_origins']} origins scored)")
    typer.echo(f"report {out / rep.HTML_FILE}")
    if result.failed:
        fail(bto.BacktestError("origins failed (rerun to retry): "
                              + "; ".join(f"{o}: {m}" for o, m in result.failed.items())))


def _progress(origin: str, record: dict | None, error: str | None) -> None:
    if error:
        typer.echo(f"  origin {origin}: FAILED: {error}", err=True)
        return
    d = record["fit"].get("diagnostics", {})
    verdict = "; ".join([HEADLINES[fit_level(record)], *d.get("reasons", [])])
    typer.echo(f"  origin {origin}: fit {record['fit'].get('wall_time_s', float('nan')):.0f} s, {verdict}")


def _print_skill(summary: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from regimecast.scoring.backtest import ENGINE

    base = list(summary["baselines"])
    table = Table(title="CRPS skill of the engine (1 - CRPS_engine / CRPS_baseline; > 0: engine better; "
                  "*: beyond noise, Diebold-Mariano p < 0.05), trusted origins only", box=box.SIMPLE_HEAD)
    for col in ("series", "horizon", "n", "engine CRPS", *base):
        table.add_column(col, justify="right" if col not in ("series",) else "left")
    for s in summary["series"]:
        for h in summary["horizons"]:
            sk, eng = summary["skill"][s][str(h)], summary["crps"][s][str(h)][ENGINE]
            table.add_row(s, f"{h} m", str(eng["n"]), num(eng["mean"]),
                          *(signed(sk[b]["skill"]) + _star(sk[b]) for b in base))
    Console(width=160).print(table)
    pol = summary.get("policy")
    if pol:
        for h, c in pol["by_horizon"].items():
            typer.echo(f"policy state {h} months ahead vs the Fed's record ({c['n']} origins): Brier engine "
                       f"{num(c['brier_engine'])}, persistence {num(c['brier_persistence'])}; most probable state "
                       f"right {num(c['hit_rate_engine'])} (persistence {num(c['hit_rate_persistence'])})")


def _star(cell: dict) -> str:
    p = cell.get("p_value")
    return "*" if p is not None and p < 0.05 else ""


def _reproduce(s, model, priors, data_dir) -> str:
    """The command line that reruns this backtest, quoted for a POSIX shell (``shlex.join``)."""
    parts = ["regimecast", "backtest", "--start", s.start, "--every", s.every, "--horizons", ",".join(map(str, s.horizons))]
    if s.end:
        parts += ["--end", s.end]
    parts += ["--seed", s.seed, "--chains", s.chains, "--draws", s.draws, "--tune", s.tune, "--paths", s.paths,
              "--max-draws", s.max_draws, "--max-retries", s.max_retries, "--retry-factor", s.retry_factor,
              "--backend", s.backend, "--mass-matrix", s.mass_matrix, "--init", s.init,
              "--priors", priors]
    if model:
        parts += ["--model", model]
    if data_dir:
        parts += ["--data-dir", data_dir]
    return shlex.join(str(p) for p in parts)
