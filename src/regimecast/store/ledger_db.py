"""The forecast ledger's SQLite file: its schema (``SCHEMA_VERSION``), connections and
transactions. One file per workspace (:attr:`regimecast.store.workspace.Workspace.ledger`,
``runs/ledger.sqlite``).

Concurrency and crashes: WAL journal, a busy timeout of ``BUSY_TIMEOUT_S``, and one
``BEGIN IMMEDIATE`` transaction per record or scoring, so concurrent writers queue and an
interrupted write leaves nothing behind. What goes in is :mod:`regimecast.store.ledger`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from regimecast.errors import RegimecastError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0                 # a writer waits this long for another's transaction
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
