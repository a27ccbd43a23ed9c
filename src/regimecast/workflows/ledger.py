"""The forecast ledger (``regimecast ledger``): list the recorded forecasts, record a run's
forecast, score every forecast whose horizon has since been observed."""

from __future__ import annotations

from pathlib import Path

from regimecast.scoring.ledger import Scoring, score
from regimecast.store import ledger, runs
from regimecast.store.workspace import Workspace


def list_forecasts(ws: Workspace) -> list[dict]:
    """Every recorded forecast with the latest scoring's aggregates (one dict a forecast)."""
    return ledger.list_forecasts(ws.ledger)


def record(ws: Workspace, run_ref: str | Path = "latest") -> tuple[Path, int, bool]:
    """Record the forecast of run ``run_ref`` (id, prefix, path or ``latest``); returns the run
    directory, the forecast id and whether it was added (False: already in the ledger)."""
    path = runs.resolve_run(ws.runs, run_ref)
    fid, added = ledger.record_run(ws.ledger, path)
    return path, fid, added


def score_ledger(ws: Workspace, data_dir: str | Path | None = None) -> Scoring:
    """Score the ledger's forecasts against the data in ``data_dir`` (default: the workspace's)."""
    return score(ws.ledger, ws.data_dir(data_dir))
