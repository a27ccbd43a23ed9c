"""The forecast ledger: every forecast summary, and its scores once its horizon is observed.

One SQLite file per workspace (:attr:`regimecast.store.workspace.Workspace.ledger`,
``runs/ledger.sqlite``). :func:`record` is called by ``api.forecast`` once a run's
``forecast_summary.nc`` is in place.

Concurrency and crashes: WAL journal, a busy timeout of ``BUSY_TIMEOUT_S``, and one
``BEGIN IMMEDIATE`` transaction per record or scoring, so concurrent writers queue and an
interrupted write leaves nothing behind. Recording the same forecast twice (same run id, same
content) is a no-op; a run forecast again with other settings gets a second entry.

Scoring (``regimecast ledger score``) is :mod:`regimecast.scoring.ledger`; its results are
stored here, in the tables ``scorings``, ``asset_scores`` and ``scenario_scores``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sqlite3
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.store import tomlfile
from regimecast.errors import RegimecastError
from regimecast.months import add_months, month_str
from regimecast.probability import summarise_probabilities
from regimecast.store.runs import load_manifest

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0                 # a writer waits this long for another's transaction
SUMMARY_FILE = "forecast_summary.nc"
CRPS_METHOD = ("2 * sum_i w_i * pinball(y, q_i, a_i), w_i = width of a_i's cell on [0, 1] split at "
               "midpoints between quantile levels")

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version      INTEGER NOT NULL,
    created_utc  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS forecasts (
    forecast_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL,
    content_sha256   TEXT NOT NULL,     -- of the stored content below (not of the file)
    recorded_utc     TEXT NOT NULL,     -- when the forecast entered the ledger
    fit_created_utc  TEXT,
    data_end         TEXT NOT NULL,     -- origin: the last observed month, YYYY-MM
    prior_set        TEXT NOT NULL,
    prior_sha256     TEXT,
    horizon_months   INTEGER NOT NULL,
    posterior_draws  INTEGER NOT NULL,
    paths_per_draw   INTEGER NOT NULL,
    seed             INTEGER,
    trusted          INTEGER,           -- the fit's diagnostics verdict: 1, 0, NULL unknown
    summary_sha256   TEXT,              -- forecast_summary.nc in the run when first recorded
    model_sha256     TEXT NOT NULL,
    model_text       TEXT NOT NULL,     -- the model file (series specs for scoring)
    data_json        TEXT NOT NULL,     -- data dir, months and file SHA-256s of the fit
    origin_json      TEXT NOT NULL,     -- {series: level at the origin month}
    UNIQUE (run_id, content_sha256)
);
CREATE TABLE IF NOT EXISTS scenario_forecasts (
    forecast_id     INTEGER NOT NULL REFERENCES forecasts (forecast_id),
    scenario        TEXT NOT NULL,
    horizon_months  INTEGER NOT NULL,
    predicate       TEXT NOT NULL,
    description     TEXT NOT NULL,
    prob_mean       REAL NOT NULL,      -- posterior mean of the per-draw probabilities
    prob_lo         REAL NOT NULL,      -- their 5% quantile
    prob_hi         REAL NOT NULL,      -- their 95% quantile
    prob_mcse       REAL,
    PRIMARY KEY (forecast_id, scenario)
);
CREATE TABLE IF NOT EXISTS quantile_forecasts (
    forecast_id   INTEGER NOT NULL REFERENCES forecasts (forecast_id),
    series        TEXT NOT NULL,
    horizon       INTEGER NOT NULL,     -- months ahead, 1..horizon_months
    target_month  TEXT NOT NULL,        -- YYYY-MM
    level         REAL NOT NULL,        -- quantile level in (0, 1)
    value         REAL,                 -- level in natural units (NULL: NaN)
    PRIMARY KEY (forecast_id, series, horizon, level)
);
CREATE TABLE IF NOT EXISTS scorings (
    scoring_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    scored_utc   TEXT NOT NULL,
    data_dir     TEXT NOT NULL,
    data_end     TEXT NOT NULL,         -- last month of realised data read
    files_json   TEXT NOT NULL,         -- per model: panel end and every file read with its SHA-256
    crps_method  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS asset_scores (
    scoring_id    INTEGER NOT NULL REFERENCES scorings (scoring_id),
    forecast_id   INTEGER NOT NULL REFERENCES forecasts (forecast_id),
    series        TEXT NOT NULL,
    horizon       INTEGER NOT NULL,
    target_month  TEXT NOT NULL,        -- the realised month used
    observed      REAL NOT NULL,
    crps          REAL NOT NULL,
    in_50         INTEGER NOT NULL,
    in_90         INTEGER NOT NULL,
    PRIMARY KEY (scoring_id, forecast_id, series, horizon)
);
CREATE TABLE IF NOT EXISTS scenario_scores (
    scoring_id   INTEGER NOT NULL REFERENCES scorings (scoring_id),
    forecast_id  INTEGER NOT NULL REFERENCES forecasts (forecast_id),
    scenario     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('resolved', 'unresolved')),
    reason       TEXT,                  -- why unresolved
    months       TEXT,                  -- realised months used, YYYY-MM..YYYY-MM
    outcome      INTEGER,
    prob         REAL NOT NULL,
    brier        REAL,
    PRIMARY KEY (scoring_id, forecast_id, scenario)
);
"""


class LedgerError(RegimecastError):
    """The ledger file, or a forecast offered to it, is unusable; names the file, field and value."""


# ---- connection and transactions ----------------------------------------------------------
def connect(path: str | Path) -> sqlite3.Connection:
    """Open (and on first use create) the ledger: WAL journal, busy timeout, foreign keys,
    schema checked against ``SCHEMA_VERSION``. Autocommit mode: writes go through
    :func:`transaction`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot open the ledger ({exc})") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _set_wal(conn)
        conn.execute("PRAGMA foreign_keys = ON")
        _ensure_schema(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerError(f"{path}: not a usable ledger database ({exc})") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to the WAL journal. On a new file two processes switching at once can get
    "database is locked" at once: SQLite does not call the busy handler for that lock (it could
    deadlock), so wait and retry here, up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def open_ledger(path: str | Path) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (take the write lock first, waiting up to the busy timeout), COMMIT
    on success, ROLLBACK on any exception: all of the block or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema if the file has none (race-safe: IF NOT EXISTS inside a write
    transaction), then check its version."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone():
        with transaction(conn):          # statement by statement: executescript would COMMIT first
            for stmt in (s.strip() for s in SCHEMA.split(";")):
                if stmt:
                    conn.execute(stmt)
            if not conn.execute("SELECT 1 FROM schema_version").fetchone():
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION, now_utc()))
    rows = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    if rows != [SCHEMA_VERSION]:
        raise LedgerError(f"{path}: table schema_version, field version = {rows}: this regimecast reads "
                          f"version {SCHEMA_VERSION}")


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
