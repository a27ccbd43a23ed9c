"""The backtest summary on synthetic origin records (exact, hand-computable numbers): untrusted
origins left out of every score, the development / hold-out split, coverage goal flags, the
policy-state summary, the paired Diebold-Mariano test against statsmodels and its size under
the null, and the report's new sections."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.sandwich_covariance import weights_uniform

from regimecast.report import backtest as rep
from regimecast.scoring import paired
from regimecast.scoring.backtest import ENGINE
from regimecast.scoring.backtest_policy import reliability
from regimecast.scoring.backtest_summary import AGGREGATES, build_summary, split_of

SERIES = ("gold",)
HORIZONS = (1, 3)
RW = "random_walk"                     # the baseline of these records ("random walk" in sentences)
REFS = ["hike", "hold", "cut"]         # the Fed's recorded categories of the synthetic policy blocks


def record(origin: str, crps: dict, *, trusted: bool = True, covered: tuple = (True, True), pit: float = 0.55,
           brier: dict | None = None, policy: dict | None = None) -> dict:
    """A minimal origin record: ``crps`` {method: CRPS at every series and horizon} (log score
    = CRPS + 1); ``covered`` the engine's (50%, 90%) coverage (baselines always covered); ``pit``
    every method's PIT; ``brier`` {method: Brier} of the resolved event "ev" (None: unresolved);
    ``policy`` a policy block."""
    def cell(m, c):
        c50, c90 = covered if m == ENGINE else (True, True)
        return {"crps": c, "log_score": c + 1, "pit": pit, "covered_50": c50, "covered_90": c90, "quantiles": {}}

    scores = {m: {s: {str(h): cell(m, c) for h in HORIZONS} for s in SERIES} for m, c in crps.items()}
    ev = {"horizon": 3, "resolved": brier is not None, "outcome": True if brier is not None else None,
          "prob": {m: 0.5 for m in crps}, "brier": brier or {m: None for m in crps}}
    diag = {"trusted": trusted, "reasons": [] if trusted else ["max R-hat 1.2"], "max_rhat": 1.0,
            "min_ess_bulk": 400.0, "divergences": 0}
    rec = {"origin": origin, "horizons": list(HORIZONS), "series": list(SERIES), "methods": list(crps),
           "scores": scores, "events": {"ev": ev}, "fit": {"diagnostics": diag, "wall_time_s": 1.0},
           "trusted": trusted, "errors": {}, "timings_s": {"fit": 1.0}}
    return rec | ({"policy": policy} if policy else {})


def policy_block(prob3: dict | None, realised: str | None, at_origin: str = "hold") -> dict:
    """A policy block with one 3-month cell: ``prob3`` {category: p}; scores as score_policy does."""
    cell = {"target_month": "2000-01", "prob": dict(prob3), "prob_reference": dict(prob3), "realised": realised,
            "modal": max(prob3, key=prob3.get), "modal_right": None, "brier": None, "persistence_brier": None,
            "persistence_right": None}
    if realised is not None:
        cell |= {"modal_right": cell["modal"] == realised,
                 "brier": sum((p - (c == realised)) ** 2 for c, p in prob3.items()),
                 "persistence_brier": sum((float(c == at_origin) - (c == realised)) ** 2 for c in REFS),
                 "persistence_right": at_origin == realised}
    return {"states": REFS, "reference_states": REFS, "at_origin": at_origin, "horizons": [3], "cells": {"3": cell}}


def summarise(recs: list[dict]) -> dict:
    return build_summary({r["origin"]: r for r in recs}, description={"settings": {"seed": 1}}, config_hash="abc",
                         directory="/tmp/x", skipped={}, unresolvable={}, failed={}, reproduce="regimecast backtest")


# ---- untrusted origins ----------------------------------------------------------------------
def test_untrusted_origins_are_listed_and_left_out_of_every_score():
    recs = [record(o, {ENGINE: c, RW: 2.0}, brier={ENGINE: b, RW: 0.25},
                   policy=policy_block({"hike": 0.0, "hold": 1.0, "cut": 0.0}, "hold"))
            for o, c, b in (("2010-01", 1.0, 0.1), ("2010-07", 2.0, 0.2), ("2011-01", 3.0, 0.3))]
    bad = record("2010-04", {ENGINE: 1e6, RW: 2.0}, trusted=False, covered=(False, False), pit=0.99,
                 brier={ENGINE: 1.0, RW: 0.25}, policy=policy_block({"hike": 1.0, "hold": 0.0, "cut": 0.0}, "cut"))
    s = summarise(recs + [bad])
    assert s["origins"] == ["2010-01", "2010-04", "2010-07", "2011-01"]
    assert s["untrusted_origins"] == ["2010-04"] and s["n_scored_origins"] == 3
    assert s["scored_origins"] == ["2010-01", "2010-07", "2011-01"]
    assert s["crps"]["gold"]["3"][ENGINE] == {"mean": 2.0, "n": 3}
    assert s["log_score"]["gold"]["1"][ENGINE] == {"mean": 3.0, "n": 3}
    assert s["skill"]["gold"]["3"][RW]["skill"] == 0.0 and s["skill"]["gold"]["3"][RW]["n"] == 3
    assert s["coverage"]["gold"]["1"][ENGINE]["90"] == 1.0 and s["coverage"]["gold"]["1"][ENGINE]["n"] == 3
    assert s["pit_histogram"][ENGINE]["gold"] == [0, 0, 0, 0, 0, 6, 0, 0, 0, 0]     # 3 origins x 2 horizons at 0.55
    assert s["brier"]["ev"]["n_resolved"] == 3 and s["brier"]["ev"]["methods"][ENGINE]["brier"] == pytest.approx(0.2)
    pol = s["policy"]["by_horizon"]["3"]
    assert pol["n"] == 3 and pol["brier_engine"] == 0.0 and pol["hit_rate_engine"] == 1.0
    assert [r["trusted"] for r in s["origin_table"]] == [True, False, True, True]
    assert not s["engine_worse"][0].startswith("None")
    assert "skill_trusted_only" not in s


def test_nothing_is_scored_when_no_fit_is_trusted():
    s = summarise([record("2010-01", {ENGINE: 1.0, RW: 2.0}, trusted=False)])
    assert s["n_scored_origins"] == 0 and s["crps"]["gold"]["1"][ENGINE] == {"mean": None, "n": 0}
    assert s["skill"]["gold"]["1"][RW]["skill"] is None and s["skill"]["gold"]["1"][RW]["verdict"] is None
    assert s["policy"] is None and s["brier"]["ev"]["n_resolved"] == 0
    assert s["engine_worse"] == ["None of the 1 origins' fits passed the sampler diagnostics: nothing was scored, "
                                 "so nothing can be said about where the engine is worse."]
    assert all(s["splits"]["development"][k] is None for k in AGGREGATES)


# ---- development and hold-out -----------------------------------------------------------------
def test_development_and_holdout_split_by_origin_month():
    assert (split_of("2021-12"), split_of("2022-01"), split_of("1999-06")) == ("development", "holdout", "development")
    spec = {"2021-06": (1.0, True), "2021-12": (1.5, True), "2022-01": (2.8, True), "2022-02": (3.2, True),
            "2022-03": (3.0, True), "2022-04": (9.0, False)}
    s = summarise([record(o, {ENGINE: c, RW: 2.0}, trusted=t) for o, (c, t) in spec.items()])
    dev, hold = s["splits"]["development"], s["splits"]["holdout"]
    assert dev["origins"] == ["2021-06", "2021-12"] and dev["untrusted_origins"] == [] and dev["n_scored_origins"] == 2
    assert hold["origins"] == ["2022-01", "2022-02", "2022-03", "2022-04"] and hold["untrusted_origins"] == ["2022-04"]
    assert dev["crps"]["gold"]["1"][ENGINE] == {"mean": 1.25, "n": 2}
    assert hold["crps"]["gold"]["1"][ENGINE] == {"mean": pytest.approx(3.0), "n": 3}
    assert s["crps"]["gold"]["1"][ENGINE] == {"mean": pytest.approx(11.5 / 5), "n": 5}
    assert hold["skill"]["gold"]["1"][RW]["skill"] == pytest.approx(1 - 3.0 / 2.0)
    assert hold["coverage"]["gold"]["3"][ENGINE]["n"] == 3 and hold["pit_histogram"][ENGINE]["gold"][5] == 6
    assert set(AGGREGATES) <= set(hold) and "pit" not in hold          # raw PIT values only at the top
    # spacing 1 month: at 3 months the windows overlap over 2 lags
    assert s["origin_spacing_months"] == 1 and hold["skill"]["gold"]["3"][RW]["lags"] == 2
    # worse in the hold-out, beyond noise there: d = 0.8, 1.2, 1.0 at lag 0
    hold_lines = [t for t in s["engine_worse"] if t.startswith("In the hold-out (origins 2022-01 on): gold, 1 month")]
    test = paired.paired_test([0.8, 1.2, 1.0], 0)
    assert test["verdict"] == "worse"
    assert len(hold_lines) == 1 and hold_lines[0].startswith(
        f"In the hold-out (origins 2022-01 on): gold, 1 month ahead: CRPS worse than random walk "
        f"(skill -0.500, worse beyond noise (DM p = {test['p_value']:.2g}));")


def test_an_empty_split_has_no_aggregates():
    s = summarise([record("2015-01", {ENGINE: 1.0, RW: 2.0}), record("2016-01", {ENGINE: 1.0, RW: 2.0})])
    hold = s["splits"]["holdout"]
    assert hold["origins"] == [] and hold["n_scored_origins"] == 0 and all(hold[k] is None for k in AGGREGATES)
    assert s["engine_worse"][-1] == "In the hold-out (origins 2022-01 on): no origins in this backtest."


# ---- coverage goals -----------------------------------------------------------------------------
def test_coverage_outside_the_goal_bands_is_flagged_with_binomial_errors():
    # 10 origins: the engine's 90% interval holds 8 (80% < 85%), its 50% interval 5 (inside 40-60%)
    recs = [record(f"2010-{i + 1:02d}", {ENGINE: 1.0, RW: 1.0}, covered=(i < 5, i < 8)) for i in range(10)]
    s = summarise(recs)
    c = s["coverage"]["gold"]["1"][ENGINE]
    assert (c["50"], c["90"], c["n"]) == (0.5, 0.8, 10)
    assert c["se"] == {"50": pytest.approx(math.sqrt(0.25 / 10)), "90": pytest.approx(math.sqrt(0.16 / 10))}
    assert c["off_goal"] == {"50": False, "90": True}
    assert s["coverage"]["gold"]["1"][RW]["off_goal"] == {"50": True, "90": True}     # always covered: too wide
    assert s["coverage_goals"] == {"50": [0.4, 0.6], "90": [0.85, 0.95]}
    assert ("gold, 1 month ahead: its 90% intervals held 80% (± 13%) of 10 outcomes, outside the goal 85%-95% "
            "(too narrow).") in s["engine_worse"]
    # on the band's edge (17 of 20 = 85%) nothing is flagged
    edge = summarise([record(f"{2000 + i}-01", {ENGINE: 1.0, RW: 1.0}, covered=(i % 2 == 0, i < 17))
                      for i in range(20)])
    assert edge["coverage"]["gold"]["1"][ENGINE]["off_goal"] == {"50": False, "90": False}


# ---- policy state -------------------------------------------------------------------------------
def test_policy_brier_hit_rates_and_reliability_on_a_hand_computed_example():
    cells = [({"hike": 0.05, "hold": 0.15, "cut": 0.8}, "cut"),     # brier 0.065, modal right; persistence 2, wrong
             ({"hike": 0.1, "hold": 0.7, "cut": 0.2}, "hold"),      # brier 0.14, right; persistence 0, right
             ({"hike": 0.3, "hold": 0.6, "cut": 0.1}, "hike"),      # brier 0.86, wrong; persistence 2, wrong
             ({"hike": 0.5, "hold": 0.5, "cut": 0.0}, None)]        # target after the data: not scored
    recs = [record(f"201{i}-01", {ENGINE: 1.0, RW: 1.0}, policy=policy_block(p, real))
            for i, (p, real) in enumerate(cells)]
    recs.append(record("2014-07", {ENGINE: 1.0, RW: 1.0}, trusted=False,
                       policy=policy_block({"hike": 1.0, "hold": 0.0, "cut": 0.0}, "cut")))
    pol = summarise(recs)["policy"]
    c = pol["by_horizon"]["3"]
    assert pol["reference_states"] == REFS and pol["horizons"] == [3]
    assert c["n"] == 3
    assert c["brier_engine"] == pytest.approx((0.065 + 0.14 + 0.86) / 3)
    assert c["brier_persistence"] == pytest.approx(4 / 3)
    assert c["hit_rate_engine"] == pytest.approx(2 / 3) and c["hit_rate_persistence"] == pytest.approx(1 / 3)
    # origins 6 months apart (2014-07 among them): 3-month windows do not overlap
    assert c["test"] == paired.paired_test([0.065 - 2, 0.14 - 0, 0.86 - 2], 0)
    bins = {round(b["lo"], 1): (b["n"], b["mean_prob"], b["observed"]) for b in c["reliability"] if b["n"]}
    assert bins == {0.0: (1, pytest.approx(0.05), 0.0), 0.1: (3, pytest.approx(0.35 / 3), 0.0),
                    0.2: (1, pytest.approx(0.2), 0.0), 0.3: (1, pytest.approx(0.3), 1.0),
                    0.6: (1, pytest.approx(0.6), 0.0), 0.7: (1, pytest.approx(0.7), 1.0),
                    0.8: (1, pytest.approx(0.8), 1.0)}
    assert len(c["reliability"]) == 10 and sum(b["n"] for b in c["reliability"]) == 9
    assert pol["goal"]["met"] is False and pol["goal"]["hit_rate"] == pytest.approx(2 / 3)


def test_policy_worse_than_persistence_is_stated_and_the_goal_judged():
    # persistence is right every time; the engine is right (modal) but less sharp: goal met, Brier worse
    recs = [record(f"201{i}-01", {ENGINE: 1.0, RW: 1.0},
                   policy=policy_block({"hike": 0.1 + 0.01 * i, "hold": 0.8 - 0.01 * i, "cut": 0.1}, "hold"))
            for i in range(5)]
    s = summarise(recs)
    c = s["policy"]["by_horizon"]["3"]
    assert c["brier_persistence"] == 0.0 and c["hit_rate_engine"] == 1.0 and s["policy"]["goal"]["met"] is True
    assert c["test"]["verdict"] == "worse"
    line = next(t for t in s["engine_worse"] if t.startswith("Fed policy state, 3 months ahead"))
    assert "worse than persistence of the origin's state (0)" in line and "worse beyond noise (DM p = " in line


def test_reliability_bins_put_each_probability_where_its_decimal_says():
    r = reliability([0.1 + 0.2, 1.0, 0.6999, 0.0, 0.7], [True, True, False, False, True])
    assert [b["n"] for b in r] == [1, 0, 0, 1, 0, 0, 1, 1, 0, 1]
    assert r[7]["mean_prob"] == pytest.approx(0.7) and r[9]["observed"] == 1.0 and r[1]["mean_prob"] is None


def test_policy_absent_from_older_records():
    s = summarise([record("2010-01", {ENGINE: 1.0, RW: 2.0})])
    assert s["policy"] is None
    page = rep.render_html(s)
    assert "Policy-state forecasts are not in these records." in page
    assert page.count('src="data:image/png;base64,') == 3


# ---- the paired test ----------------------------------------------------------------------------
def test_overlap_lags_and_origin_spacing():
    assert paired.origin_spacing(["2020-01", "2020-07", "2021-01"]) == 6
    assert paired.origin_spacing(["2021-01", "2020-01", "2020-04"]) == 3           # the smallest gap, any order
    assert paired.origin_spacing(["2020-01"]) is None
    assert [paired.overlap_lags(h, 6) for h in (1, 3, 6, 7, 12, 13)] == [0, 0, 0, 1, 1, 2]
    assert paired.overlap_lags(12, 3) == 3 and paired.overlap_lags(12, None) == 0


@pytest.mark.parametrize("lags", [0, 1, 3, 5])
def test_hac_variance_equals_statsmodels(lags):
    d = np.random.default_rng(lags).standard_normal(37) + 0.2
    X = np.ones((d.size, 1))
    bart = sm.OLS(d, X).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    unif = sm.OLS(d, X).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False,
                                                        "weights_func": weights_uniform})
    assert abs(paired.hac_variance(d, lags, paired.BARTLETT) - bart.cov_params()[0, 0]) < 1e-10
    assert abs(paired.hac_variance(d, lags, paired.UNIFORM) - unif.cov_params()[0, 0]) < 1e-10
    if lags == 0:      # the plain standard error with ddof = 0 (not the sample sd's ddof = 1)
        assert abs(paired.hac_variance(d, 0) - np.std(d, ddof=0) ** 2 / d.size) < 1e-15
        assert abs(paired.hac_variance(d, 0) - np.std(d, ddof=1) ** 2 / d.size) > 1e-4


def test_dm_statistic_with_the_hln_correction_by_hand():
    d = np.array([0.3, 0.4, 0.2, 0.5, 0.6, 0.1, -0.1, -0.2])
    n, L = d.size, 1
    u = d - d.mean()
    var = (u @ u / n + 2 * (u[1:] @ u[:-1]) / n) / n                       # rectangular window, 1 lag
    dm = math.sqrt((n + 1 - 2 * 2 + 2 * 1 / n) / n) * d.mean() / math.sqrt(var)
    t = paired.paired_test(d, L)
    assert t["se_diff"] == pytest.approx(math.sqrt(var), rel=1e-12) and t["dm_stat"] == pytest.approx(dm, rel=1e-12)
    assert t["p_value"] == pytest.approx(2 * stats.t.sf(abs(dm), n - 1), rel=1e-12)
    assert (t["n"], t["lags"], t["kernel"]) == (8, 1, "uniform")
    assert t["verdict"] == ("worse" if t["p_value"] < 0.05 else "within noise")
    assert paired.paired_test(-d - 1, 0)["verdict"] == "better"
    assert paired.paired_test([0.5], 0)["verdict"] is None                       # one difference: untested
    assert paired.paired_test([0.0, 0.0, 0.0], 0)["p_value"] == 1.0
    # alternating differences: the rectangular window's variance is negative, Bartlett's is used
    alt = np.array([0.3, -0.1, 0.4, 0.2, 0.5, -0.2, 0.6, 0.1])
    assert paired.hac_variance(alt, 1, paired.UNIFORM) < 0
    fb = paired.paired_test(alt, 1)
    assert fb["kernel"] == "bartlett"
    assert fb["se_diff"] == pytest.approx(math.sqrt(paired.hac_variance(alt, 1, paired.BARTLETT)))


NULL_SERIES = 4000           # simulated series per case: Monte Carlo SE of a 5% rate 0.0034
IID_TOL = 0.015              # about 4 Monte Carlo SEs
MA_TOL = 0.025               # the HLN-corrected DM is slightly oversized with overlapping windows (5.5-7% measured)


def _rejection_rate(seed: int, n: int, lags: int, kernel: str) -> float:
    """Share of NULL_SERIES mean-zero MA(lags) series (equal weights: sums of lags + 1 iid
    shocks, as overlapping forecast windows) whose paired test rejects at 5%."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((NULL_SERIES, n + lags))
    d = sum(e[:, k:k + n] for k in range(lags + 1))
    return float(np.mean([paired.paired_test(x, lags, kernel)["p_value"] < paired.ALPHA for x in d]))


@pytest.mark.parametrize(("n", "lags", "tol"),
                         [(30, 0, IID_TOL), (60, 0, IID_TOL), (40, 1, MA_TOL), (100, 3, MA_TOL)])
def test_dm_rejects_a_true_null_about_5_percent_of_the_time(n, lags, tol):
    rate = _rejection_rate(n + lags, n, lags, paired.KERNEL)
    assert abs(rate - paired.ALPHA) <= tol, rate


def test_bartlett_weights_over_reject_overlapping_windows():
    """Why the rectangular window is the default: Bartlett with L lags underestimates the
    long-run variance of an MA(L) and rejects a true null about twice as often as 5%."""
    assert _rejection_rate(7, 100, 3, paired.BARTLETT) > 2 * paired.ALPHA - IID_TOL


# ---- the report -----------------------------------------------------------------------------------
def test_report_shows_exclusions_splits_coverage_marks_and_policy():
    recs = [record(o, {ENGINE: c, RW: 2.0}, covered=(True, o != "2021-01"),
                   policy=policy_block({"hike": 0.1, "hold": 0.7, "cut": 0.2}, "hold"))
            for o, c in (("2021-01", 1.0), ("2021-07", 1.2), ("2022-01", 2.8), ("2022-07", 3.1))]
    recs.append(record("2023-01", {ENGINE: 50.0, RW: 2.0}, trusted=False))
    page = rep.render_html(summarise(recs))
    assert "1 of 5 origin fits did not pass" in page and "were excluded from every score" in page
    assert "4 of 5 origins are scored. Excluded: 2023-01" in page
    assert ("Model changes for skill were chosen on the development origins (up to 2021-12) only; the hold-out "
            "origins (2022-01 on) were not used to choose anything.") in page
    for ident in ("skill-development", "skill-holdout", "coverage-development", "coverage-holdout", "policy",
                  "policy-holdout", "policy-reliability"):
        assert f'id="{ident}"' in page
    assert "Hold-out origins (2022-01 on): 2 scored of 3 origins" in page
    assert "75% ±22†" in page                                   # 3 of 4 inside the engine's 90% interval
    assert "Goal (modal state right in &gt;= 80% of origins at 3 months): met" in page
    assert "In the hold-out (origins 2022-01 on): gold, 1 month ahead: CRPS worse than random walk" in page
    assert page.count('src="data:image/png;base64,') == 4
    assert "no: fit untrusted" in page and "hold-out" in page


def test_event_reliability_pools_every_resolved_event_and_origin():
    """Two origins, two events: the pairs (0.05, no), (0.15, yes), (0.95, yes), (0.92, no) and
    one unresolved event left out; bins of width 0.1."""
    from regimecast.scoring.backtest_summary import _event_reliability

    def ev(p, outcome, resolved=True):
        return {"resolved": resolved, "outcome": outcome, "prob": {"engine": p}, "brier": {}, "horizon": 12}

    recs = [{"events": {"a": ev(0.05, False), "b": ev(0.95, True), "c": ev(0.5, None, resolved=False)}},
            {"events": {"a": ev(0.15, True), "b": ev(0.92, False)}}]
    grid = type("G", (), {"methods": ["engine"]})()
    rel = _event_reliability(recs, grid)["engine"]
    assert rel["n"] == 4
    bins = {round(b["lo"], 1): b for b in rel["bins"] if b["n"]}
    assert set(bins) == {0.0, 0.1, 0.9}
    assert bins[0.9]["n"] == 2 and bins[0.9]["mean_prob"] == pytest.approx(0.935) and bins[0.9]["observed"] == 0.5
    assert bins[0.1]["observed"] == 1.0 and bins[0.0]["observed"] == 0.0
