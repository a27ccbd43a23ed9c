"""Pieces shared by the CLI commands: workspace from the context, common options, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from regimecast.checks.verdict import HEADLINES
from regimecast.store.workspace import Workspace

DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="Data directory (default: $REGIMECAST_DATA_DIR, else the workspace data/).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Model file or name in models/ (default: models/default.toml).")]
PriorsOpt = Annotated[str, typer.Option("--priors", help="Prior file or name in priors/.")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Last month YYYY-MM (default: the common end of the data).")]


def workspace(ctx: typer.Context) -> Workspace:
    obj = ctx.obj
    if isinstance(obj, dict) and obj.get("workspace") is not None:
        return obj["workspace"]
    return Workspace.at()


def model_path(ws: Workspace, model: str | None) -> Path:
    return ws.models / "default.toml" if model is None else ws.model_file(model)


def fail(err: Exception, code: int = 1) -> NoReturn:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(getattr(err, "exit_code", code))


def echo_verdict(level: str, reasons: list[str]) -> None:
    """The verdict as every command prints it: ``verdict: <headline>``, then one reason a line."""
    typer.echo(f"verdict: {HEADLINES[level]}")
    for reason in reasons:
        typer.echo(f"  - {reason}")
