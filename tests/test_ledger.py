"""The forecast ledger (regimecast.store.ledger, ``regimecast ledger``): recording (idempotent,
concurrent writers, a writer killed mid-transaction), listing, and scoring against
hand-computed values on a synthetic entry, against the Normal CRPS in closed form, and end to
end from a real (tiny) forecast scored on the real data."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm
from typer.testing import CliRunner

from regimecast.store import ledger, ledger_db
from regimecast.scoring import ledger as ledger_score
from regimecast.scoring import scores as scoring
from regimecast.config.model_file import load_model_config
from regimecast.scenarios.predicates import latent_factors
from regimecast.scenarios.sets import load_scenarios
from regimecast.simulate.summaries import QUANTILES as SUMMARY_LEVELS

REPO = Path(__file__).resolve().parents[1]
CONFIG = load_model_config(REPO / "models" / "default.toml")
LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
BASE = np.array([1.0, 2.0, 3.0, 4.0, 5.0])            # quantiles at LEVELS, times a per-series scale
ASSETS = {"y10": 1.0, "equity": 30.0, "gold": 500.0, "vix": 6.0}
ORIGIN = "2020-01"
SCENARIOS = """
schema_version = 1
[policy]
horizons = [1]

[[scenario]]
name = "y10_above_5"
description = "10y above 5% within 3 months"
horizon = 3
predicate = "ever(y10 > 5.0, 3)"

[[scenario]]
name = "equity_up"
description = "equity up after 3 months"
horizon = 3
predicate = "change(equity, 3) > 0"

[[scenario]]
name = "equity_dip_then_qe"
description = "a dip and QE"
horizon = 3
predicate = 'max_drawdown(equity, 3) > 0.05 and ever(policy == "qe", 3)'

[[scenario]]
name = "gold_up"
description = "gold up after 3 months"
horizon = 3
predicate = "change(gold, 3) > 0"

[[scenario]]
name = "equity_drawdown_12"
description = "equity drawdown beyond 10% within 12 months"
horizon = 12
predicate = "max_drawdown(equity, 12) > 0.10"
"""
NAMES = ["y10_above_5", "equity_up", "equity_dip_then_qe", "gold_up", "equity_drawdown_12"]
HORIZONS = [3, 3, 3, 3, 12]
PROBS = {"y10_above_5": [0.2, 0.4, 0.6], "equity_up": [0.7, 0.7, 0.7], "equity_dip_then_qe": [0.1, 0.1, 0.1],
         "gold_up": [0.5, 0.5, 0.5], "equity_drawdown_12": [0.3, 0.3, 0.3]}


# ---- synthetic forecasts -----------------------------------------------------------------
def synthetic_summary(origin: str = ORIGIN, horizon: int = 12, shift: float = 0.0) -> xr.Dataset:
    """A forecast summary shaped like SummaryAccumulator.result: quantiles BASE * scale (+ shift)
    at every horizon, per-draw scenario probabilities PROBS."""
    q = np.stack([np.broadcast_to(BASE * k + shift, (horizon, len(LEVELS))) for k in ASSETS.values()])
    dates = pd.date_range(pd.Timestamp(f"{origin}-01") + pd.DateOffset(months=1), periods=horizon, freq="MS")
    return xr.Dataset(
        {"scenario_prob": (("draw", "scenario"), np.array([PROBS[n] for n in NAMES]).T),
         "quantiles": (("series", "horizon", "quantile"), q),
         "origin": (("series",), [3.0, 100.0, 1500.0, 15.0])},
        coords={"draw": np.arange(3), "scenario": NAMES, "series": list(ASSETS), "horizon": np.arange(1, horizon + 1),
                "date": ("horizon", dates), "quantile": list(LEVELS), "scenario_horizon": ("scenario", HORIZONS),
                "description": ("scenario", [f"about {n}" for n in NAMES])},
        attrs={"origin_date": origin, "seed": 1, "paths_per_draw": 10})


def synthetic_manifest(run_id: str, origin: str = ORIGIN) -> dict:
    return {"run_id": run_id, "created_utc": "2026-01-01T00:00:00+00:00",
            "data": {"dir": "/nowhere", "start": "2003-01", "end": origin,
                     "provenance": {"y10": {"file": "DGS10.csv", "sha256": "ab" * 32, "last": f"{origin}-31"}}},
            "priors": {"name": "baseline", "sha256": "cd" * 32},
            "model": {"file": "models/default.toml", "sha256": CONFIG.sha256, "text": CONFIG.text},
            "forecast": {"scenarios": {"file": "scenarios.toml", "text": SCENARIOS}},
            "diagnostics": {"trusted": False}, "files": {"forecast_summary.nc": "ef" * 32}}


def realised_frame(end: str = "2020-04") -> pd.DataFrame:
    """Realised levels from the origin 2020-01 to ``end`` (forecast units)."""
    idx = pd.date_range("2019-12-01", end, freq="MS")
    data = {"y10": [2.9, 3.0, 3.5, 4.5, 6.0], "equity": [101.0, 100.0, 95.0, 90.0, 97.0],
            "gold": [1490.0, 1500.0, 1600.0, np.nan, 1400.0], "vix": [14.0, 15.0, 20.0, 25.0, 18.0]}
    return pd.DataFrame({k: v[:len(idx)] for k, v in data.items()}, index=idx)


# ---- worker processes (module level: started with the "spawn" method) ---------------------
def _writer(db: str, prefix: str, n: int, barrier) -> None:
    barrier.wait()
    for i in range(n):
        ledger.record(db, synthetic_manifest(f"{prefix}-{i:02d}"), synthetic_summary(shift=i))


def _killed_writer(db: str, in_transaction) -> None:
    """Starts a real record, writes half of its quantile rows inside the transaction, then
    waits to be killed (SIGKILL) before COMMIT."""
    real = ledger._insert_rows

    def stall(conn, table, fid, rows):
        if table != "quantile_forecasts":
            return real(conn, table, fid, rows)
        real(conn, table, fid, rows[: len(rows) // 2])
        in_transaction.set()
        time.sleep(600)

    ledger._insert_rows = stall
    ledger.record(db, synthetic_manifest("killed"), synthetic_summary())


def _slow_writer(db: str, in_transaction, hold_s: float) -> None:
    """Records a forecast but holds its transaction open for ``hold_s`` seconds before COMMIT."""
    real = ledger._insert_rows

    def slow(conn, table, fid, rows):
        real(conn, table, fid, rows)
        if table == "quantile_forecasts":
            in_transaction.set()
            time.sleep(hold_s)

    ledger._insert_rows = slow
    ledger.record(db, synthetic_manifest("slow"), synthetic_summary())


def _runs(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT run_id FROM forecasts ORDER BY forecast_id")]


# ---- recording ---------------------------------------------------------------------------
def test_schema_created_on_first_use_in_wal_mode(tmp_path):
    db = tmp_path / "runs" / "ledger.sqlite"
    with ledger_db.open_ledger(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(ledger_db.SCHEMA_VERSION,)]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"forecasts", "scenario_forecasts", "quantile_forecasts", "scorings", "asset_scores",
            "scenario_scores"} <= tables


def test_record_stores_header_scenarios_and_quantiles(tmp_path):
    db = tmp_path / "ledger.sqlite"
    fid, added = ledger.record(db, synthetic_manifest("run-a"), synthetic_summary())
    assert added
    with sqlite3.connect(db) as conn:
        run_id, end, priors, horizon, trusted = conn.execute(
            "SELECT run_id, data_end, prior_set, horizon_months, trusted FROM forecasts").fetchone()
        scen = conn.execute("SELECT scenario, predicate, prob_mean, prob_lo, prob_hi FROM scenario_forecasts "
                            "WHERE scenario = 'y10_above_5'").fetchone()
        q = conn.execute("SELECT target_month, value FROM quantile_forecasts WHERE series = 'gold' AND horizon = 2 "
                         "AND level = 0.75").fetchone()
        n_q = conn.execute("SELECT COUNT(*) FROM quantile_forecasts").fetchone()[0]
    assert (run_id, end, priors, horizon, trusted) == ("run-a", ORIGIN, "baseline", 12, 0)
    assert scen[:3] == ("y10_above_5", "ever(y10 > 5.0, 3)", pytest.approx(0.4))
    assert scen[3] == pytest.approx(np.quantile([0.2, 0.4, 0.6], 0.05)) and scen[4] == pytest.approx(0.58)
    assert q == ("2020-03", 2000.0)
    assert n_q == len(ASSETS) * 12 * len(LEVELS)


def test_same_forecast_twice_is_one_entry_another_forecast_of_the_run_is_kept(tmp_path):
    db = tmp_path / "ledger.sqlite"
    first = ledger.record(db, synthetic_manifest("run-a"), synthetic_summary())
    again = ledger.record(db, synthetic_manifest("run-a"), synthetic_summary())
    assert first == (first[0], True) and again == (first[0], False)
    other = ledger.record(db, synthetic_manifest("run-a"), synthetic_summary(shift=1.0))
    assert other[1] and other[0] != first[0]
    assert _runs(db) == ["run-a", "run-a"]


def test_record_names_the_missing_manifest_field(tmp_path):
    m = synthetic_manifest("run-a")
    m["forecast"]["scenarios"]["text"] = SCENARIOS.replace('name = "gold_up"', 'name = "gold_upp"')
    with pytest.raises(ledger_db.LedgerError, match="forecast.scenarios.text has no scenario 'gold_up'"):
        ledger.record(tmp_path / "l.sqlite", m, synthetic_summary())
    m = synthetic_manifest("run-a")
    del m["priors"]["name"]
    with pytest.raises(ledger_db.LedgerError, match="run run-a: manifest field priors.name is missing"):
        ledger.record(tmp_path / "l.sqlite", m, synthetic_summary())
    assert not (tmp_path / "l.sqlite").exists()              # checked before the ledger is touched


def test_wrong_schema_version_and_a_non_database_are_refused(tmp_path):
    db = tmp_path / "ledger.sqlite"
    ledger_db.connect(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(ledger_db.LedgerError, match=r"schema_version, field version = \[99\]"):
        ledger_db.connect(db)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ledger_db.LedgerError, match="junk.sqlite"):
        ledger_db.connect(junk)


def test_concurrent_writers_both_land(tmp_path):
    """Two processes record 15 forecasts each into a fresh ledger, released together."""
    db = tmp_path / "runs" / "ledger.sqlite"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(db), p, 15, barrier)) for p in ("left", "right")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    runs = _runs(db)
    assert sorted(runs) == sorted(f"{p}-{i:02d}" for p in ("left", "right") for i in range(15))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        per = conn.execute("SELECT COUNT(*) FROM quantile_forecasts GROUP BY forecast_id").fetchall()
    assert per == [(len(ASSETS) * 12 * len(LEVELS),)] * 30


def test_a_writer_waits_for_another_writers_transaction(tmp_path):
    """While one process holds its write transaction open, a second writer waits (busy
    timeout) and lands after the first commits, instead of failing with 'database is locked'."""
    db = tmp_path / "ledger.sqlite"
    ledger_db.connect(db).close()
    ctx = mp.get_context("spawn")
    in_tx = ctx.Event()
    p = ctx.Process(target=_slow_writer, args=(str(db), in_tx, 2.0))
    p.start()
    assert in_tx.wait(300), "the slow writer never reached its transaction"
    t0 = time.perf_counter()
    ledger.record(db, synthetic_manifest("fast"), synthetic_summary())
    waited = time.perf_counter() - t0
    p.join(60)
    assert p.exitcode == 0 and _runs(db) == ["slow", "fast"] and waited > 1.0


def test_writer_killed_mid_transaction_leaves_nothing(tmp_path):
    db = tmp_path / "ledger.sqlite"
    ledger.record(db, synthetic_manifest("before"), synthetic_summary())
    ctx = mp.get_context("spawn")
    in_tx = ctx.Event()
    p = ctx.Process(target=_killed_writer, args=(str(db), in_tx))
    p.start()
    assert in_tx.wait(300), "the writer never reached its transaction"
    assert [r["run_id"] for r in ledger.list_forecasts(db)] == ["before"]    # readers go on (WAL)
    p.kill()
    p.join(60)
    assert p.exitcode == -9
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        orphans = conn.execute("SELECT COUNT(*) FROM quantile_forecasts WHERE forecast_id NOT IN "
                               "(SELECT forecast_id FROM forecasts)").fetchone()[0]
        orphans += conn.execute("SELECT COUNT(*) FROM scenario_forecasts WHERE forecast_id NOT IN "
                                "(SELECT forecast_id FROM forecasts)").fetchone()[0]
    assert _runs(db) == ["before"] and orphans == 0
    ledger.record(db, synthetic_manifest("after"), synthetic_summary())      # the lock is gone
    assert _runs(db) == ["before", "after"]


def test_listing(tmp_path):
    db = tmp_path / "ledger.sqlite"
    assert ledger.list_forecasts(db) == [] and not db.exists()               # listing creates nothing
    ledger.record(db, synthetic_manifest("run-a"), synthetic_summary())
    ledger.record(db, synthetic_manifest("run-b", "2020-02"), synthetic_summary("2020-02"))
    rows = ledger.list_forecasts(db)
    assert [(r["run_id"], r["data_end"], r["prior_set"], r["horizon_months"], r["n_scenarios"]) for r in rows] == \
        [("run-a", ORIGIN, "baseline", 12, 5), ("run-b", "2020-02", "baseline", 12, 5)]
    assert rows[0]["scored_assets"] == 0 and rows[0]["scored_brier"] is None


# ---- scoring -------------------------------------------------------------------------------
def test_crps_from_many_quantiles_matches_the_normal_closed_form():
    """CRPS(N(mu, sigma), y) = sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)), z = (y - mu) / sigma;
    999 evenly spaced levels: within 0.1% (observed about 2e-5)."""
    a = np.arange(1, 1000) / 1000
    for mu, sigma, y in [(0.0, 1.0, 0.0), (0.0, 1.0, 0.3), (1.0, 2.0, -2.5), (4.2, 0.3, 4.9), (100.0, 15.0, 60.0)]:
        z = (y - mu) / sigma
        exact = sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
        got = scoring.crps_from_quantiles(y, mu + sigma * norm.ppf(a), a)
        assert got == pytest.approx(exact, rel=1e-3)


def test_crps_on_the_summary_levels_is_close_in_expectation():
    """On the summary's nine levels the expected CRPS of a Normal forecast (outcomes from the
    forecast itself) is within 5% of the closed form (observed 2.9% low); an equal-weight mean
    of the pinball losses would be about 33% low."""
    a = np.asarray(SUMMARY_LEVELS)
    y = norm.ppf((np.arange(20000) + 0.5) / 20000)
    exact = np.mean(y * (2 * norm.cdf(y) - 1) + 2 * norm.pdf(y) - 1 / np.sqrt(np.pi))
    q = norm.ppf(a)
    weighted = np.mean(scoring.crps_from_quantiles(y, q, a))
    equal = np.mean(2 * scoring.pinball(y[:, None], q, a).mean(-1))
    assert weighted == pytest.approx(exact, rel=0.05)
    assert equal < 0.75 * exact


def test_quantile_weights():
    np.testing.assert_allclose(scoring.quantile_weights(LEVELS), [0.15, 0.225, 0.25, 0.225, 0.15])
    with pytest.raises(ValueError, match="strictly increasing"):
        scoring.quantile_weights([0.5, 0.25])


def _scored(tmp_path, realised: pd.DataFrame):
    db = tmp_path / "ledger.sqlite"
    ledger.record(db, synthetic_manifest("run-a"), synthetic_summary())
    with ledger_db.open_ledger(db) as conn:
        (f,) = ledger.load_forecasts(conn)
    return ledger_score.score_forecast(f, CONFIG, realised)


def test_scores_against_hand_computed_values(tmp_path):
    """y10 quantiles (1, 2, 3, 4, 5) at levels (.05, .25, .5, .75, .95), weights (.15, .225, .25,
    .225, .15); realised 3.5, 4.5, 6.0 at months 1-3:
      y = 3.5: pinball (.125, .375, .25, .125, .075) -> CRPS 2 * 0.205  = 0.41,  in 50% and 90%
      y = 4.5: pinball (.175, .625, .75, .375, .025) -> CRPS 2 * 0.4425 = 0.885, in 90% only
      y = 6.0: pinball (.25, 1, 1.5, 1.5, .95)       -> CRPS 2 * 1.1175 = 2.235, in neither.
    Scenarios: y10 > 5 by month 3 happened (p = 0.4: Brier 0.36); equity 100 -> 97 is down
    (p = 0.7: Brier 0.49)."""
    r = _scored(tmp_path, realised_frame())
    y10 = [a for a in r.assets if a.series == "y10"]
    assert [(a.horizon, a.target_month, a.observed) for a in y10] == [(1, "2020-02", 3.5), (2, "2020-03", 4.5),
                                                                      (3, "2020-04", 6.0)]
    assert [a.crps for a in y10] == pytest.approx([0.41, 0.885, 2.235])
    assert [(a.in_50, a.in_90) for a in y10] == [(True, True), (False, True), (False, False)]
    eq = [a for a in r.assets if a.series == "equity"]                     # quantiles 30..150
    assert [(a.in_50, a.in_90) for a in eq] == [(True, True), (True, True), (True, True)]
    assert eq[0].crps == pytest.approx(2 * (.15 * .05 * 65 + .225 * .25 * 35 + .25 * .5 * 5 + .225 * .25 * 25
                                            + .15 * .05 * 55))
    s = {c.scenario: c for c in r.scenarios}
    assert (s["y10_above_5"].status, s["y10_above_5"].outcome, s["y10_above_5"].brier) == \
        ("resolved", True, pytest.approx(0.36))
    assert (s["equity_up"].outcome, s["equity_up"].brier) == (False, pytest.approx(0.49))
    assert s["equity_up"].months == "2020-01..2020-04"


def test_scenario_with_a_latent_factor_is_unresolved(tmp_path):
    r = _scored(tmp_path, realised_frame())
    s = {c.scenario: c for c in r.scenarios}["equity_dip_then_qe"]
    assert (s.status, s.outcome, s.brier) == ("unresolved", None, None)     # the dip happened; QE is latent
    assert "latent factor(s) policy" in s.reason


def test_missing_realised_month_is_not_guessed(tmp_path):
    r = _scored(tmp_path, realised_frame())
    gold = {c.scenario: c for c in r.scenarios}["gold_up"]
    assert gold.status == "unresolved" and "missing for gold" in gold.reason and gold.brier is None
    assert [a.horizon for a in r.assets if a.series == "gold"] == [1, 3] and r.missing == 1


def test_no_look_ahead(tmp_path):
    """Realised data to 2020-04 (3 months after the origin): horizons 4..12 and the 12-month
    scenario are not scored; with data to 2020-02 only horizon 1, no 3-month scenario."""
    r = _scored(tmp_path, realised_frame())
    assert {a.horizon for a in r.assets} == {1, 2, 3}
    assert r.pending_assets == len(ASSETS) * 9 and r.pending_scenarios == 1
    assert "equity_drawdown_12" not in {c.scenario for c in r.scenarios}
    early = _scored(tmp_path / "b", realised_frame("2020-02"))
    assert {a.horizon for a in early.assets} == {1} and early.pending_scenarios == 4
    assert [c.scenario for c in early.scenarios] == ["equity_dip_then_qe"]    # unresolvable at any time


# ---- end to end --------------------------------------------------------------------------------
def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_cli_lists_and_scores_against_real_data_without_look_ahead(tmp_path, fred_dir, model_bundle):
    """A synthetic forecast from two months before the real data's end: `ledger score` scores
    horizons 1 and 2 from the real files, records the data used, and `ledger` lists it."""
    from regimecast.cli import app

    end = model_bundle.panel.end
    origin = (pd.Timestamp(f"{end}-01") - pd.DateOffset(months=2)).strftime("%Y-%m")
    db = tmp_path / "runs" / "ledger.sqlite"
    ledger.record(db, synthetic_manifest("run-real", origin), synthetic_summary(origin))
    env = {"COLUMNS": "250", "REGIMECAST_DATA_DIR": None}
    out = CliRunner().invoke(app, ["--workspace", str(tmp_path), "ledger", "score", "--data-dir", str(fred_dir)],
                             env=env)
    assert out.exit_code == 0, out.output
    assert f"data {fred_dir.resolve()} to {end}" in out.output
    assert "8 asset horizons scored, 40 not yet observed, 0 missing" in out.output
    with sqlite3.connect(db) as conn:
        data_dir, data_end, files = conn.execute("SELECT data_dir, data_end, files_json FROM scorings").fetchone()
        months = {r[0] for r in conn.execute("SELECT target_month FROM asset_scores")}
        y10 = conn.execute("SELECT observed FROM asset_scores WHERE series = 'y10' AND horizon = 2").fetchone()[0]
    recorded = json.loads(files)[CONFIG.sha256]
    assert (data_dir, data_end, recorded["end"]) == (str(fred_dir.resolve()), end, end)
    assert recorded["files"]["y10"]["sha256"] == _sha(fred_dir / "DGS10.csv")
    assert months == {(pd.Timestamp(f"{origin}-01") + pd.DateOffset(months=h)).strftime("%Y-%m") for h in (1, 2)}
    assert y10 == pytest.approx(float(model_bundle.panel.levels.sel(series="y10", date=f"{end}-01")))
    listed = CliRunner().invoke(app, ["--workspace", str(tmp_path), "ledger"], env=env)
    assert listed.exit_code == 0 and "run-real" in listed.output and origin in listed.output


def test_real_forecast_lands_in_the_ledger_and_is_scored(tiny_fit, workspace, fred_dir):
    """api.forecast records the forecast (to 2013-12); scored on the real data every asset
    horizon (2014-01..2015-12) is observed; policy scenarios are unresolved, the others resolved
    with Brier scores in [0, 1]; recording the same run again adds nothing."""
    from regimecast import api
    from regimecast.simulate.forecast import ForecastSettings

    settings = ForecastSettings(seed=3, horizon=24, paths=20, max_draws=8, chunk=8)
    path, summary = api.forecast(workspace, tiny_fit[0], settings, store=False)
    rows = [r for r in ledger.list_forecasts(workspace.ledger) if r["run_id"] == path.name
            and (r["seed"], r["paths_per_draw"], r["posterior_draws"]) == (3, 20, 8)]   # other tests forecast it too
    assert len(rows) == 1 and rows[0]["data_end"] == "2013-12" and rows[0]["trusted"] == 0
    assert ledger.record_run(workspace.ledger, path) == (rows[0]["forecast_id"], False)
    result = ledger_score.score(workspace.ledger, fred_dir)
    (r,) = [x for x in result.forecasts if x.forecast.forecast_id == rows[0]["forecast_id"]]
    assert len(r.assets) == 4 * 24 and r.pending_assets == 0 and r.missing == 0
    assert {a.target_month for a in r.assets} == {f"{y}-{m:02d}" for y in (2014, 2015) for m in range(1, 13)}
    status = {c.scenario: c for c in r.scenarios}
    assert set(status) == {str(n) for n in summary["scenario"].values}
    scen = load_scenarios(workspace.models / "scenarios.toml", series=CONFIG.observed,
                          factors={f.name: f.states for f in CONFIG.factors})
    for sc in scen.scenarios:
        c = status[sc.name]
        if latent_factors(sc.expr):
            assert c.status == "unresolved" and c.brier is None
        else:
            assert c.status == "resolved" and 0 <= c.brier <= 1
            assert c.months == f"2013-12..{(pd.Timestamp('2013-12-01') + pd.DateOffset(months=sc.horizon)):%Y-%m}"
    assert np.all(np.isfinite([a.crps for a in r.assets])) and all(a.crps >= 0 for a in r.assets)


def test_a_stored_model_file_that_no_longer_loads_is_named(tmp_path, fred_dir):
    db = tmp_path / "ledger.sqlite"
    m = synthetic_manifest("run-a")
    m["model"]["text"] = CONFIG.text.replace("schema_version = 1", "schema_version = 7", 1)
    m["model"]["sha256"] = "12" * 32
    ledger.record(db, m, synthetic_summary())
    with pytest.raises(ledger_db.LedgerError, match=r"model_sha256 = 121212121212\.\.\.: field model_text .*"
                                                 r"'schema_version' = 7"):
        ledger_score.score(db, fred_dir)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM scorings").fetchone()[0] == 0
