"""``regimecast update RUN``: refit a run on newly published months and show what moved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from regimecast.checks.verdict import fit_level
from regimecast.cli.common import EndOpt, echo_verdict, fail, workspace
from regimecast.errors import RegimecastError


def update(ctx: typer.Context,
           run_ref: Annotated[str, typer.Argument(help="Parent run: id, unique id prefix, path, or 'latest'.")],
           data_dir: Annotated[Path | None, typer.Option(
               "--data-dir", help="Data directory (default: $REGIMECAST_DATA_DIR, else the parent run's).")] = None,
           end: EndOpt = None,
           accept_revisions: Annotated[bool, typer.Option(
               "--accept-revisions", help="Refit even if the data revise months the parent was fitted on.")] = False,
           draws: Annotated[int | None, typer.Option("--draws", help="Default: the parent's.")] = None,
           tune: Annotated[int | None, typer.Option("--tune", help="Default: the parent's.")] = None,
           chains: Annotated[int | None, typer.Option("--chains", help="Default: the parent's.")] = None,
           seed: Annotated[int | None, typer.Option("--seed", help="Default: the parent's.")] = None) -> None:
    """Refit RUN on the months published since its last one (warm-started from it), forecast,
    and write reports/<child>/update.html: scenario probabilities and the policy state before
    and after, and what each new month did. Exit code 2 when the child must not be trusted."""
    from regimecast import api

    overrides = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains, seed=seed).items() if v is not None}
    ws = workspace(ctx)
    try:
        path, content = api.update(ws, run_ref, data_dir=data_dir, end=end, accept_revisions=accept_revisions,
                                   overrides=overrides)
    except (RegimecastError, ValueError) as e:
        fail(e)
    d = content["child"]["diagnostics"]
    typer.echo(f"run {path.name} (parent {content['parent']['run_id']}; new months {', '.join(content['new_months'])})")
    for name, v in content["scenarios"].items():
        typer.echo(f"  {name:24s} {v['before']['mean']:6.1%} -> {v['after']['mean']:6.1%}")
    typer.echo(f"update report {ws.reports / path.name / 'update.html'}")
    echo_verdict(fit_level(d), d["reasons"])
    if not d["trusted"]:
        raise typer.Exit(2)
