"""The backtest: scores against closed forms, origins and seeds, no look-ahead, resumability,
the Dask path, the report, and the CLI end to end.

The driver tests use ``stand_in_engine`` in place of the engine's refit (a real fit takes
minutes here): it forecasts like the iid-Gaussian baseline from the job's truncated panel and
fails loudly if the job holds any month after its origin. The real engine runs end to end in
``test_cli_backtest_with_the_real_engine`` (slow tier) and in ``benchmarks/backtest_time.py``.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr
from scipy import stats

from regimecast.workflows import backtest as bt
from regimecast.workflows import backtest_origin as bto
from regimecast.scoring import backtest as bs
from regimecast.report import backtest as rep
from regimecast.scoring.backtest_summary import build_summary
from regimecast.months import add_months, months_between
from regimecast.scoring import baselines
from regimecast.scoring import policy
from regimecast.scoring import scores as scoring

CALLS: list[str] = []
UNTRUSTED: set[str] = set()      # origins whose stand-in fit says "untrusted"


def stand_in_engine(job: bto.OriginJob) -> bto.EngineForecast:
    """An engine stand-in: iid-Gaussian paths per asset from the job's data (nothing sampled)."""
    last = pd.Timestamp(f"{job.origin}-01")
    assert pd.Timestamp(job.panel.levels["date"].values[-1]) <= last
    assert pd.Timestamp(job.panel.observations["date"].values[-1]) == last
    CALLS.append(job.origin)
    specs = {s.name: s for s in job.config.series}
    hist = {s: bto.baseline_history(job.panel, job.config, s) for s in job.assets}
    paths = {s: baselines.iid_gaussian(job.sampler.seed + i, hist[s], job.forecast.horizon, job.settings.ensemble_size,
                                       baselines.increment_kind(specs[s].transform))
             for i, s in enumerate(job.assets)}
    events = bto.event_probabilities(job.events.scenarios, {s: baselines.last_level(hist[s]) for s in job.assets}, paths)
    # Trusted unless the origin is listed in UNTRUSTED: the summary scores trusted records only.
    trusted = job.origin not in UNTRUSTED
    diag = {"trusted": trusted, "reasons": [] if trusted else ["stand-in engine: marked untrusted"],
            "max_rhat": float("nan"), "min_ess_bulk": float("nan"), "divergences": 0}
    # policy forecast: the state recorded at the origin with probability 0.7, the rest spread evenly
    states = list(job.config.factor(job.config.transition_factor).states)
    now = policy.recorded_state(job.config, job.origin)
    probs = {m: 0.7 if m == now else 0.3 / (len(states) - 1) for m in states}
    return bto.EngineForecast(paths=np.stack([paths[s] for s in job.assets], axis=-1), events=events,
                             fit={"diagnostics": diag, "wall_time_s": 0.0}, design_end=job.panel.end,
                             policy={str(h): probs for h in job.settings.policy_horizons})


def _numbers(records: dict) -> dict:
    """Records without their wall times (which differ from run to run)."""
    return {o: {k: v for k, v in r.items() if k not in ("timings_s", "fit")} | {"fit": r["fit"]["diagnostics"]}
            for o, r in records.items()}


SETTINGS = bto.BacktestSettings(start="2014-01", every=12, end="2015-01", horizons=(1, 3, 12), seed=17,
                               chains=2, draws=50, paths=8, max_draws=100)


@pytest.fixture(scope="module")
def inputs(workspace, fred_dir):
    return bt.load_inputs(workspace, data_dir=fred_dir)


# ---- scoring against closed forms ---------------------------------------------------------------
def test_crps_and_log_score_of_a_normal_ensemble_match_the_closed_forms():
    rng = np.random.default_rng(0)
    mu, sigma = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 3.0])
    y = np.array([0.3, 2.5, -2.0])
    x = mu[:, None] + sigma[:, None] * rng.standard_normal((3, 40_000))
    np.testing.assert_allclose(scoring.crps(y, x), sr.crps_normal(y, mu, sigma), rtol=0.01)
    bw = scoring.kde_bandwidth(x)                          # the KDE of a normal sample is N(mu, sigma^2 + bw^2)
    np.testing.assert_allclose(scoring.log_score(y, x), -stats.norm.logpdf(y, mu, np.hypot(sigma, bw)), atol=0.02)
    np.testing.assert_allclose(scoring.log_score(y, x), -stats.norm.logpdf(y, mu, sigma), atol=0.06)
    np.testing.assert_allclose(scoring.log_score(y, x), sr.logs_ensemble(y, x), rtol=1e-4)   # scoringrules' estimator
    far = scoring.log_score(60.0, x[0])                    # scoringrules' density underflows to 0 there
    assert np.isfinite(far) and far > 1000


def test_pit_coverage_and_brier_on_hand_examples():
    ens = np.arange(1.0, 101.0)                            # 1..100
    assert scoring.pit(50.5, ens) == pytest.approx(0.5)
    assert scoring.pit(50.0, ens) == pytest.approx(0.495)  # a tie counts half
    assert scoring.covered(50.0, ens, 0.5) and not scoring.covered(10.0, ens, 0.5)
    assert scoring.covered(10.0, ens, 0.9) and not scoring.covered(0.0, ens, 0.9)
    np.testing.assert_allclose(scoring.brier([1, 0, 1, 0], [0.8, 0.3, 0.5, 0.0]), [0.04, 0.09, 0.25, 0.0])
    with pytest.raises(ValueError):
        scoring.brier([2], [0.5])
    assert scoring.skill(0.8, 1.0) == pytest.approx(0.2) and np.isnan(scoring.skill(1.0, 0.0))


def test_pit_is_uniform_for_calibrated_forecasts_and_not_for_overconfident_ones():
    rng = np.random.default_rng(1)
    mu = rng.normal(0, 5, 3000)
    y = mu + rng.standard_normal(3000)
    good = scoring.pit(y, mu[:, None] + rng.standard_normal((3000, 400)))
    narrow = scoring.pit(y, mu[:, None] + 0.5 * rng.standard_normal((3000, 400)))
    counts = scoring.pit_histogram(good)
    assert counts.sum() == 3000 and stats.chisquare(counts).pvalue > 0.01
    assert stats.chisquare(scoring.pit_histogram(narrow)).pvalue < 1e-6
    levels = [0.5, 0.9]
    np.testing.assert_allclose(scoring.coverage_curve(good, levels), levels, atol=0.03)
    assert np.all(scoring.coverage_curve(narrow, levels) < np.array(levels) - 0.1)


# ---- origins, seeds, events -----------------------------------------------------------------------
def test_origins_skip_months_before_the_first_feasible_one(inputs):
    s = bto.BacktestSettings(start="2009-01", every=6, horizons=(1, 3, 12), seed=1)
    todo, skipped = bto.origins(s, inputs.config, "2026-07")
    assert bto.earliest_origin(inputs.config) == "2009-12"
    assert list(skipped) == ["2009-01", "2009-07"]
    assert "min_months = 84" in skipped["2009-01"]
    assert todo[0] == "2010-01" and todo[-1] == "2026-01"    # the last with its 1-month horizon observed
    with pytest.raises(bto.BacktestError, match="latest usable origin is 2026-06"):
        bto.origins(bto.BacktestSettings(start="2020-01", every=6, horizons=(1,), seed=1, end="2026-07"),
                   inputs.config, "2026-07")


def test_origin_seeds_are_deterministic_and_depend_on_the_origin_only():
    a = bto.origin_seeds(5, "2015-06", 6)
    assert a == bto.origin_seeds(5, "2015-06", 6) and len(set(a)) == 6
    assert a != bto.origin_seeds(5, "2015-07", 6) and a != bto.origin_seeds(6, "2015-06", 6)


def test_latent_policy_events_are_not_resolvable(inputs):
    assert {s.name for s in inputs.events.scenarios} == {"everything_down", "y10_above_5", "y10_below_3_5",
                                                         "equity_drawdown_10", "equity_drawdown_20"}
    assert "qe_restart_12m" in inputs.unresolvable and "double_kill" in inputs.unresolvable
    assert all("latent factor(s) policy" in why for why in inputs.unresolvable.values())


# ---- no look-ahead --------------------------------------------------------------------------------
def test_the_job_holds_no_month_after_its_origin(inputs):
    from regimecast.workflows.engine import RegimeModel

    job = bt.origin_job(inputs, SETTINGS, "2015-06")
    assert job.panel.end == "2015-06"
    assert str(job.panel.levels["date"].values[-1])[:7] == "2015-06"
    assert RegimeModel(job.config, job.priors, job.panel).design.dates[-1] == pd.Timestamp("2015-06-01")
    for s in job.assets:
        hist = bto.baseline_history(job.panel, job.config, s)
        assert len(hist) == months_between("2002-12", "2015-06") + 1     # sample start - 1 .. origin


def test_data_after_the_origin_change_the_scores_but_not_the_forecasts(inputs, fred_dir, tmp_path):
    """Rewrite every Nasdaq value after the origin month: the forecasts at the origin are
    identical, the scores of the equity forecasts are not (outcomes are the months after)."""
    origin = "2014-06"
    data = tmp_path / "fred"
    shutil.copytree(fred_dir, data)
    f = data / "NASDAQCOM.csv"
    lines = f.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        date, value = line.split(",")
        late = date >= "2014-07-01" and value not in ("", ".")
        out.append(f"{date},{float(value) * 1.5:.2f}" if late else line)
    f.write_text("\n".join(out) + "\n")
    changed = bt.BacktestInputs(**{**inputs.__dict__, "data_dir": data,
                                   "full": bt.build_panel(inputs.config.series, inputs.config.sample, data)})
    a = bto.run_origin(bt.origin_job(inputs, SETTINGS, origin), stand_in_engine)
    b = bto.run_origin(bt.origin_job(changed, SETTINGS, origin), stand_in_engine)
    assert a.data_end == b.data_end == origin and a.design_end == origin
    for m in a.samples:
        np.testing.assert_array_equal(a.samples[m], b.samples[m])
        assert a.events[m] == b.events[m]
    ra = bs.score_origin(a, bs.realised(inputs.full, a.assets), inputs.events, "h", 1)
    rb = bs.score_origin(b, bs.realised(changed.full, b.assets), inputs.events, "h", 1)
    for h in ("1", "3", "12"):
        month = pd.Timestamp(f"{add_months(origin, int(h))}-01")
        assert ra["observed"]["equity"][h] == pytest.approx(float(inputs.full.levels.sel(series="equity", date=month)))
        assert rb["observed"]["equity"][h] == pytest.approx(1.5 * ra["observed"]["equity"][h], rel=1e-4)
        assert rb["scores"]["engine"]["equity"][h]["crps"] != ra["scores"]["engine"]["equity"][h]["crps"]
        assert rb["scores"]["engine"]["y10"][h] == ra["scores"]["engine"]["y10"][h]    # untouched series
    assert ra["target_months"] == {"1": "2014-07", "3": "2014-09", "12": "2015-06"}


# ---- the driver: resumable, serial and Dask ---------------------------------------------------------
def test_resumable_only_the_missing_origin_is_recomputed(inputs, tmp_path):
    CALLS.clear()
    first = bt.run_backtest(inputs, SETTINGS, tmp_path, serial=True, engine=stand_in_engine)
    assert sorted(first.computed) == ["2014-01", "2015-01"] and not first.failed and CALLS == ["2014-01", "2015-01"]
    files = {o: bt.origin_file(first.directory, o) for o in first.computed}
    assert first.directory.parent.name == "backtest" and (first.directory / "config.json").is_file()
    stamp = files["2014-01"].stat().st_mtime_ns
    files["2015-01"].unlink()
    CALLS.clear()
    again = bt.run_backtest(inputs, SETTINGS, tmp_path, serial=True, engine=stand_in_engine)
    assert CALLS == ["2015-01"] and again.computed == ["2015-01"] and again.reused == ["2014-01"]
    assert files["2014-01"].stat().st_mtime_ns == stamp
    assert _numbers(again.records) == _numbers(first.records)  # a rerun gives the same numbers
    assert not list(first.directory.glob(".tmp-*"))
    CALLS.clear()
    bt.run_backtest(inputs, SETTINGS, tmp_path, serial=True, engine=stand_in_engine)
    assert CALLS == []


def test_config_hash_covers_the_settings_not_the_origin_set(inputs):
    a = bt.config_hash(bt.config_description(inputs, SETTINGS))
    wider = bto.BacktestSettings(**{**SETTINGS.__dict__, "start": "2013-01", "every": 3})
    assert bt.config_hash(bt.config_description(inputs, wider)) == a
    other = bto.BacktestSettings(**{**SETTINGS.__dict__, "draws": 51})
    assert bt.config_hash(bt.config_description(inputs, other)) != a


def test_resume_follows_the_config_hash(inputs, tmp_path):
    """A rerun with more origins under the same settings reuses the stored ones and computes
    only the new; a rerun with a changed setting writes a new directory and reuses nothing."""
    CALLS.clear()
    first = bt.run_backtest(inputs, SETTINGS, tmp_path, serial=True, engine=stand_in_engine)
    wider = bto.BacktestSettings(**{**SETTINGS.__dict__, "start": "2013-07", "every": 6})
    CALLS.clear()
    more = bt.run_backtest(inputs, wider, tmp_path, serial=True, engine=stand_in_engine)
    assert more.directory == first.directory and more.config_hash == first.config_hash
    assert sorted(more.reused) == ["2014-01", "2015-01"] and sorted(CALLS) == ["2013-07", "2014-07"]
    assert _numbers({o: more.records[o] for o in first.records}) == _numbers(first.records)
    other = bto.BacktestSettings(**{**SETTINGS.__dict__, "draws": 51})
    CALLS.clear()
    fresh = bt.run_backtest(inputs, other, tmp_path, serial=True, engine=stand_in_engine)
    assert fresh.directory != first.directory and fresh.reused == [] and sorted(CALLS) == ["2014-01", "2015-01"]
    assert sorted(p.name for p in (tmp_path / bt.BACKTEST_DIR).iterdir()) == sorted(
        [first.config_hash, fresh.config_hash])


def test_dask_path_gives_the_serial_numbers(inputs, tmp_path):
    from distributed import LocalCluster

    serial = bt.run_backtest(inputs, SETTINGS, tmp_path / "serial", serial=True, engine=stand_in_engine)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        seen = []
        par = bt.run_backtest(inputs, SETTINGS, tmp_path / "dask", scheduler=cluster.scheduler_address,
                              engine=stand_in_engine, progress=lambda o, r, e: seen.append((o, e)))
    assert sorted(par.computed) == ["2014-01", "2015-01"] and not par.failed
    assert sorted(seen) == [("2014-01", None), ("2015-01", None)]
    assert par.config_hash == serial.config_hash and _numbers(par.records) == _numbers(serial.records)


def test_local_cluster_has_one_worker_per_cpu_at_most_one_per_origin(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert bt.default_workers(5) == 2 and bt.default_workers(1) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert bt.default_workers(5) == 1


def _malloc_trim() -> str | None:
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_workers_keep_glibc_default_trimming():
    """Dask's MALLOC_TRIM_THRESHOLD_=65536 made each refit about twice as slow in a worker."""
    from distributed import Client

    with bt.local_cluster(1) as cluster, Client(cluster) as client:
        assert list(client.run(_malloc_trim).values()) == [None]


def test_a_failing_origin_is_reported_and_not_written(inputs, tmp_path):
    def broken(job):
        if job.origin == "2015-01":
            raise RuntimeError("sampler exploded")
        return stand_in_engine(job)

    res = bt.run_backtest(inputs, SETTINGS, tmp_path, serial=True, engine=broken)
    assert res.computed == ["2014-01"] and "sampler exploded" in res.failed["2015-01"]
    assert not bt.origin_file(res.directory, "2015-01").exists()


# ---- the report -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backtest_records(inputs, tmp_path_factory):
    res = bt.run_backtest(inputs, SETTINGS, tmp_path_factory.mktemp("bt"), serial=True, engine=stand_in_engine)
    return res


def test_summary_skill_and_coverage_from_the_records(backtest_records, inputs):
    res = backtest_records
    kw = dict(description=res.description, config_hash=res.config_hash, directory=str(res.directory),
              skipped={"2013-01": "why"}, unresolvable=inputs.unresolvable, failed={}, reproduce="regimecast backtest ...")
    s = build_summary(res.records, **kw)
    recs = list(res.records.values())
    assert all(r["trusted"] for r in recs)                       # UNTRUSTED is empty: every stand-in fit is trusted
    e = np.mean([r["scores"]["engine"]["gold"]["3"]["crps"] for r in recs])
    g = np.mean([r["scores"]["garch"]["gold"]["3"]["crps"] for r in recs])
    assert s["skill"]["gold"]["3"]["garch"]["skill"] == pytest.approx(1 - e / g)
    assert s["skill"]["gold"]["3"]["garch"]["n"] == 2
    assert s["skill"]["gold"]["12"]["garch"]["n"] == 2           # 2014-01 + 12 and 2015-01 + 12 observed
    assert s["skill"]["gold"]["12"]["garch"]["lags"] == 0         # origins 12 months apart: 12-month windows abut
    cov = np.mean([r["scores"]["random_walk"]["vix"]["1"]["covered_90"] for r in recs])
    assert s["coverage"]["vix"]["1"]["random_walk"]["90"] == pytest.approx(cov)
    assert sum(s["pit_histogram"]["engine"]["y10"]) == 2 * 3
    assert set(s["brier"]) == {sc.name for sc in inputs.events.scenarios}
    assert s["untrusted_origins"] == [] and s["n_scored_origins"] == 2 and s["engine_worse"]
    assert s["splits"]["development"]["origins"] == ["2014-01", "2015-01"]
    assert s["splits"]["holdout"]["origins"] == [] and s["splits"]["holdout"]["skill"] is None
    right = [r["policy"]["cells"]["3"]["persistence_right"] for r in recs]
    assert s["policy"]["by_horizon"]["3"]["n"] == 2
    assert s["policy"]["by_horizon"]["3"]["hit_rate_persistence"] == pytest.approx(np.mean(right))
    # an untrusted origin is listed and left out of every score
    marked = {o: r | {"trusted": o != "2014-01"} for o, r in res.records.items()}
    t = build_summary(marked, **kw)
    late = res.records["2015-01"]["scores"]
    assert t["untrusted_origins"] == ["2014-01"] and t["n_scored_origins"] == 1 and t["origins"] == s["origins"]
    assert t["crps"]["gold"]["3"]["engine"] == {"mean": pytest.approx(late["engine"]["gold"]["3"]["crps"]), "n": 1}
    assert t["skill"]["gold"]["3"]["garch"]["n"] == 1 and t["policy"]["by_horizon"]["3"]["n"] == 1
    assert sum(t["pit_histogram"]["engine"]["y10"]) == 3


def test_report_is_self_contained_and_escaped(backtest_records, inputs, tmp_path):
    res = backtest_records
    marked = {o: r | {"trusted": o != "2014-01"} for o, r in res.records.items()}
    s = build_summary(marked, description=res.description, config_hash=res.config_hash,
                      directory=str(res.directory), skipped={}, unresolvable=inputs.unresolvable, failed={},
                      reproduce="regimecast backtest --start 2014-01 <script>alert(1)</script>")
    out = rep.write_backtest_report(tmp_path / "backtest", s)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "summary.json"]
    page = (out / "index.html").read_text()
    assert "Content-Security-Policy" in page and "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)=["']https?:""", page)
    assert page.count('src="data:image/png;base64,') == 5    # PIT, calibration, skill, event and policy reliability
    assert 'data-verdict="fail"' in page and "1 of 2 origin fits did not pass" in page
    assert "were excluded from every score" in page and "1 of 2 origins are scored" in page
    assert "Where the engine is worse" in page and "not resolvable" in page
    assert "the hold-out origins (2022-01 on) were not used to choose anything" in page
    assert 'id="holdout-empty">No origins.' in page and 'id="policy-goal"' in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["horizons"] == [1, 3, 12] and set(summary["baselines"]) == set(baselines.BASELINES)


# ---- CLI ------------------------------------------------------------------------------------------
def test_cli_backtest_end_to_end_with_the_stand_in_engine(workspace, fred_dir, monkeypatch):
    from typer.testing import CliRunner

    from regimecast.cli import app

    monkeypatch.setattr(bt, "engine_forecast", stand_in_engine)
    args = ["--workspace", str(workspace.root), "backtest", "--start", "2014-01", "--every", "12", "--end", "2015-01",
            "--horizons", "1,3,12", "--chains", "2", "--draws", "40", "--paths", "5", "--serial",
            "--data-dir", str(fred_dir)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "CRPS skill" in r.output and "origin 2015-01" in r.output
    assert (workspace.reports / "backtest" / "index.html").is_file()
    r2 = CliRunner().invoke(app, args)
    assert r2.exit_code == 0 and "0 computed, 2 reused" in r2.output
    r3 = CliRunner().invoke(app, [*args, "--scheduler", "tcp://127.0.0.1:1"])
    assert r3.exit_code == 1 and "exclude each other" in r3.output


@pytest.mark.slow
def test_cli_backtest_with_the_real_engine(workspace, fred_dir):
    """Two origins, each a real (tiny) refit and forecast, through the CLI: minutes."""
    from typer.testing import CliRunner

    from regimecast.cli import app

    args = ["--workspace", str(workspace.root), "backtest", "--start", "2014-01", "--every", "12", "--end", "2015-01",
            "--horizons", "1,3", "--chains", "2", "--draws", "30", "--tune", "30", "--paths", "5", "--max-draws", "40",
            "--max-retries", "0", "--serial", "--data-dir", str(fred_dir)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads((workspace.reports / "backtest" / "summary.json").read_text())
    assert summary["origins"] == ["2014-01", "2015-01"] and summary["untrusted_origins"] == ["2014-01", "2015-01"]
    for row in summary["origin_table"]:
        assert row["max_rhat"] is not None and row["horizons_scored"] == [1, 3]
    rec = json.loads(next((workspace.runs / "backtest").glob("*/origin-2015-01.json")).read_text())
    assert rec["design_end"] == rec["data_end_seen"] == "2015-01"
    assert rec["scores"]["engine"]["equity"]["3"]["crps"] > 0
    assert [a["draws"] for a in rec["fit"]["attempts"]] == [30]          # --max-retries 0: no refit
    cell = rec["policy"]["cells"]["3"]                                   # 2015-04: hold in the Fed's record
    assert cell["realised"] == "hold" and sum(cell["prob"].values()) == pytest.approx(1.0)
    assert rec["policy"]["at_origin"] == "hold" and cell["brier"] is not None
