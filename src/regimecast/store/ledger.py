"""The forecast ledger: every forecast summary, and its scores once its horizon is observed.

One SQLite file per workspace (:attr:`regimecast.store.workspace.Workspace.ledger`,
``runs/ledger.sqlite``). :func:`record` is called by ``api.forecast`` once a run's
``forecast_summary.nc`` is in place.

The file, its schema, connections and transactions are :mod:`regimecast.store.ledger_db`: one
``BEGIN IMMEDIATE`` transaction per record or scoring, so concurrent writers queue and an
interrupted write leaves nothing behind. Recording the same forecast twice (same run id, same
content) is a no-op; a run forecast again with other settings gets a second entry.

Scoring (``regimecast ledger score``) is :mod:`regimecast.scoring.ledger`; its results are
stored here, in the tables ``scorings``, ``asset_scores`` and ``scenario_scores``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.store import tomlfile
from regimecast.store.ledger_db import LedgerError, now_utc, open_ledger, transaction
from regimecast.months import add_months, month_str
from regimecast.probability import summarise_probabilities
from regimecast.store.runs import load_manifest

SUMMARY_FILE = "forecast_summary.nc"
CRPS_METHOD = ("2 * sum_i w_i * pinball(y, q_i, a_i), w_i = width of a_i's cell on [0, 1] split at "
               "midpoints between quantile levels")


# ---- recording --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One forecast as stored: ``header`` (columns of ``forecasts`` but the id and the
    recording time), ``scenarios`` (rows of ``scenario_forecasts`` without the id) and
    ``quantiles`` (rows of ``quantile_forecasts`` without the id)."""

    header: dict
    scenarios: list[tuple]
    quantiles: list[tuple]

    @property
    def content_sha256(self) -> str:
        content = {k: v for k, v in self.header.items() if k != "summary_sha256"}
        blob = json.dumps([content, self.scenarios, self.quantiles], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


def entry(manifest: dict, summary: xr.Dataset) -> Entry:
    """The ledger entry of a run's forecast: its manifest (after the forecast was added) and
    its summary Dataset (:meth:`regimecast.simulate.summaries.SummaryAccumulator.result`)."""
    run_id = _field(manifest, "run_id", "manifest")
    where = f"run {run_id}"
    data_end = _field(manifest, "data.end", where)
    origin = str(summary.attrs.get("origin_date"))
    if origin != data_end:
        raise LedgerError(f"{where}: forecast summary attribute origin_date = {origin!r} differs from the "
                          f"manifest's data.end = {data_end!r}")
    predicates = _predicates(manifest, where)
    scen = []
    for name in summary["scenario"].values:
        name = str(name)
        if name not in predicates:
            raise LedgerError(f"{where}: manifest field forecast.scenarios.text has no scenario {name!r} "
                              "(the summary has it)")
        st = summarise_probabilities(summary["scenario_prob"].sel(scenario=name).values)
        scen.append((name, int(summary["scenario_horizon"].sel(scenario=name)), predicates[name],
                     str(summary["description"].sel(scenario=name).values),
                     st["mean"], st["lo"], st["hi"], None if math.isnan(st["mcse"]) else st["mcse"]))
    q = summary["quantiles"].transpose("series", "horizon", "quantile")
    months = [month_str(t) for t in summary["date"].values]
    for h, m in zip(summary["horizon"].values, months):
        if m != add_months(data_end, int(h)):
            raise LedgerError(f"{where}: forecast summary date at horizon {int(h)} = {m!r}, expected "
                              f"{add_months(data_end, int(h))!r} ({int(h)} months after {data_end})")
    quant = [(str(s), int(h), months[j], float(lv), _finite(q.values[i, j, k]))
             for i, s in enumerate(q["series"].values) for j, h in enumerate(q["horizon"].values)
             for k, lv in enumerate(q["quantile"].values)]
    diag = manifest.get("diagnostics", {})
    header = {
        "run_id": run_id, "fit_created_utc": manifest.get("created_utc"), "data_end": data_end,
        "prior_set": _field(manifest, "priors.name", where), "prior_sha256": manifest["priors"].get("sha256"),
        "horizon_months": int(summary.sizes["horizon"]), "posterior_draws": int(summary.sizes["draw"]),
        "paths_per_draw": int(summary.attrs.get("paths_per_draw", 0)),
        "seed": int(summary.attrs["seed"]) if "seed" in summary.attrs else None,
        "trusted": None if "trusted" not in diag else int(bool(diag["trusted"])),
        "summary_sha256": manifest.get("files", {}).get(SUMMARY_FILE),
        "model_sha256": _field(manifest, "model.sha256", where), "model_text": _field(manifest, "model.text", where),
        "data_json": json.dumps(data_record(manifest["data"]), sort_keys=True),
        "origin_json": json.dumps({str(s): float(v) for s, v in zip(summary["series"].values,
                                                                    summary["origin"].values)}, sort_keys=True),
    }
    return Entry(header, scen, quant)


def record(db: str | Path, manifest: dict, summary: xr.Dataset) -> tuple[int, bool]:
    """Add a run's forecast to the ledger in one transaction; returns ``(forecast_id, added)``
    (``added`` False when the same forecast of the same run is already there)."""
    e = entry(manifest, summary)
    digest = e.content_sha256
    with open_ledger(db) as conn, transaction(conn):
        row = conn.execute("SELECT forecast_id FROM forecasts WHERE run_id = ? AND content_sha256 = ?",
                           (e.header["run_id"], digest)).fetchone()
        if row is not None:
            return int(row[0]), False
        cols = {**e.header, "content_sha256": digest, "recorded_utc": now_utc()}
        cur = conn.execute(f"INSERT INTO forecasts ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           tuple(cols.values()))
        fid = int(cur.lastrowid)
        _insert_rows(conn, "scenario_forecasts", fid, e.scenarios)
        _insert_rows(conn, "quantile_forecasts", fid, e.quantiles)
    return fid, True


def record_run(db: str | Path, run_dir: str | Path) -> tuple[int, bool]:
    """Add the forecast of a run directory (manifest verified against its files) to the ledger."""
    manifest = load_manifest(Path(run_dir))
    if SUMMARY_FILE not in manifest.get("files", {}):
        raise LedgerError(f"{run_dir}: manifest field files has no {SUMMARY_FILE}: the run has no forecast yet")
    summary = xr.load_dataset(Path(run_dir) / SUMMARY_FILE, engine="h5netcdf")
    return record(db, manifest, summary)


def _insert_rows(conn: sqlite3.Connection, table: str, fid: int, rows: list[tuple]) -> None:
    if rows:
        marks = ", ".join("?" * (len(rows[0]) + 1))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", [(fid, *r) for r in rows])


def _field(doc: dict, dotted: str, where: str):
    cur = doc
    for k in dotted.split("."):
        if not isinstance(cur, dict) or k not in cur:
            raise LedgerError(f"{where}: manifest field {dotted} is missing")
        cur = cur[k]
    return cur


def _predicates(manifest: dict, where: str) -> dict[str, str]:
    text = _field(manifest, "forecast.scenarios.text", where)
    try:
        doc = tomlfile.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LedgerError(f"{where}: manifest field forecast.scenarios.text is not valid TOML ({exc})") from exc
    return {t["name"]: t["predicate"] for t in doc.get("scenario", []) if "name" in t and "predicate" in t}


def data_record(data: dict) -> dict:
    """Data dir, sample months and every file's name and SHA-256 (not its missing months)."""
    def files(p: dict) -> dict:
        out = {"file": p.get("file"), "sha256": p.get("sha256"), "last": p.get("last")}
        return out | ({"minus": files(p["minus"])} if p.get("minus") else {})
    return {"dir": data.get("dir"), "start": data.get("start"), "end": data.get("end"),
            "files": {k: files(v) for k, v in data.get("provenance", {}).items()}}


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# ---- reading ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredScenario:
    name: str
    horizon: int
    predicate: str
    prob: float
    lo: float
    hi: float


@dataclass(frozen=True)
class StoredForecast:
    """A ledger entry as read back: ``quantiles[series]`` (horizon, level) in natural units,
    ``levels`` the quantile levels, ``data_end`` the origin month."""

    forecast_id: int
    run_id: str
    data_end: str
    horizon: int
    model_sha256: str
    model_text: str
    levels: np.ndarray
    quantiles: dict[str, np.ndarray]
    scenarios: tuple[StoredScenario, ...]


def load_forecasts(conn: sqlite3.Connection) -> list[StoredForecast]:
    out = []
    for fid, run_id, end, H, msha, mtext in conn.execute(
            "SELECT forecast_id, run_id, data_end, horizon_months, model_sha256, model_text FROM forecasts "
            "ORDER BY forecast_id"):
        q = pd.DataFrame(conn.execute("SELECT series, horizon, level, value FROM quantile_forecasts "
                                      "WHERE forecast_id = ?", (fid,)).fetchall(),
                         columns=["series", "horizon", "level", "value"])
        levels = np.sort(q["level"].unique())
        quant = {}
        for s, g in q.groupby("series", sort=True):
            t = g.pivot(index="horizon", columns="level", values="value").reindex(index=range(1, H + 1),
                                                                                    columns=levels)
            quant[str(s)] = t.to_numpy(float)
        scen = tuple(StoredScenario(*r) for r in conn.execute(
            "SELECT scenario, horizon_months, predicate, prob_mean, prob_lo, prob_hi FROM scenario_forecasts "
            "WHERE forecast_id = ? ORDER BY rowid", (fid,)))
        out.append(StoredForecast(fid, run_id, end, H, msha, mtext, levels, quant, scen))
    return out


def list_forecasts(db: str | Path) -> list[dict]:
    """One dict per forecast, oldest first, with the latest scoring's aggregates (``scored_*``;
    None when never scored). An absent ledger is empty (and is not created)."""
    if not Path(db).is_file():
        return []
    with open_ledger(db) as conn:
        conn.row_factory = sqlite3.Row
        last = conn.execute("SELECT MAX(scoring_id) FROM scorings").fetchone()[0]
        rows = conn.execute("""
            SELECT f.forecast_id, f.run_id, f.recorded_utc, f.data_end, f.prior_set, f.horizon_months,
                   f.posterior_draws, f.paths_per_draw, f.seed, f.trusted,
                   (SELECT COUNT(*) FROM scenario_forecasts s WHERE s.forecast_id = f.forecast_id) AS n_scenarios,
                   (SELECT COUNT(*) FROM asset_scores a WHERE a.forecast_id = f.forecast_id
                        AND a.scoring_id = :last) AS scored_assets,
                   (SELECT AVG(in_50) FROM asset_scores a WHERE a.forecast_id = f.forecast_id
                        AND a.scoring_id = :last) AS scored_cover_50,
                   (SELECT AVG(in_90) FROM asset_scores a WHERE a.forecast_id = f.forecast_id
                        AND a.scoring_id = :last) AS scored_cover_90,
                   (SELECT COUNT(*) FROM scenario_scores c WHERE c.forecast_id = f.forecast_id
                        AND c.scoring_id = :last AND c.status = 'resolved') AS scored_resolved,
                   (SELECT AVG(brier) FROM scenario_scores c WHERE c.forecast_id = f.forecast_id
                        AND c.scoring_id = :last AND c.status = 'resolved') AS scored_brier
            FROM forecasts f ORDER BY f.forecast_id""", {"last": last}).fetchall()
    return [dict(r) for r in rows]
