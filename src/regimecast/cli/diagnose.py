"""``regimecast diagnose RUN``: review a fit, write reports/<run_id>/diagnostics.html, print the
verdict with its reasons; exit 0 (pass), 1 (warn), 2 (fail) or 3 (could not diagnose)."""

from __future__ import annotations

from typing import Annotated

import typer

from regimecast.cli.common import DataDirOpt, echo_verdict, fail, workspace
from regimecast.config.defaults import SEED
from regimecast.errors import RegimecastError

ERROR_EXIT = 3   # 0-2 are the verdicts


def diagnose(ctx: typer.Context,
             run_ref: Annotated[str, typer.Argument(help="Run id, unique id prefix, path, or 'latest'.")] = "latest",
             seed: Annotated[int, typer.Option("--seed", help="Seed of the replicated samples "
                                               "(posterior predictive checks).")] = SEED,
             ppc_draws: Annotated[int, typer.Option("--ppc-draws", help="Posterior draws replicated "
                                                    "(evenly thinned).")] = 500,
             ppc_paths: Annotated[int, typer.Option("--ppc-paths", help="Replicated samples per draw.")] = 10,
             pit_draws: Annotated[int, typer.Option("--pit-draws", help="Posterior draws for LOO-PIT.")] = 1000,
             mixture: Annotated[bool, typer.Option("--mixture/--no-mixture", help="Where some month's Pareto k "
                                                   "is above the warn level, sample the mixture of leave-one-out "
                                                   "posteriors to estimate its elpd.")] = True,
             mixture_chains: Annotated[int, typer.Option("--mixture-chains")] = 2,
             mixture_draws: Annotated[int, typer.Option("--mixture-draws")] = 1000,
             mixture_tune: Annotated[int, typer.Option("--mixture-tune")] = 500,
             data_dir: DataDirOpt = None) -> None:
    """Review a fitted run: convergence, sampler, prior contraction, posterior predictive checks,
    LOO-PIT, mixture-sampled LOO where PSIS is unreliable. Prints the verdict pass / warn / fail
    with reasons; exit code 0 / 1 / 2."""
    from regimecast.workflows.diagnose import diagnose as run_diagnose
    from regimecast.checks.review import DiagnoseSettings

    try:
        settings = DiagnoseSettings(seed=seed, ppc_draws=ppc_draws, ppc_paths=ppc_paths, pit_draws=pit_draws,
                                    mixture=mixture, mixture_chains=mixture_chains, mixture_draws=mixture_draws,
                                    mixture_tune=mixture_tune)
        res = run_diagnose(workspace(ctx), run_ref, settings, data_dir=data_dir,
                           progress=lambda msg: typer.echo(f"  ... {msg}", err=True))
    except (RegimecastError, ValueError) as e:
        fail(e, ERROR_EXIT)
    typer.echo(f"run {res.run_id}: diagnosed in {res.wall_time_s:.1f} s")
    typer.echo(f"  report {res.html}")
    echo_verdict(res.verdict.level, res.verdict.reasons)
    raise typer.Exit(res.verdict.exit_code)
