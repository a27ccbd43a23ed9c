"""Backtest baselines against closed forms and parameter recovery on simulated data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from regimecast.scoring import baselines as bl

N = 200_000


def _history(seed: int, incr: np.ndarray, start: float, kind: str) -> np.ndarray:
    x = np.concatenate([[0.0], np.cumsum(incr)])
    return start + x if kind == "additive" else start * np.exp(x / 100.0)


@pytest.mark.parametrize("kind", ["additive", "log"])
def test_random_walk_quantiles_match_the_normal_closed_form(kind):
    rng = np.random.default_rng(0)
    incr = np.concatenate([rng.normal(0, 5.0, 100), rng.normal(0, 0.3 if kind == "additive" else 4.0, bl.RW_WINDOW)])
    levels = _history(0, incr, 4.0 if kind == "additive" else 1000.0, kind)
    s = incr[-bl.RW_WINDOW:].std(ddof=1)                 # only the trailing window counts
    paths = bl.random_walk(11, levels, 6, N, kind)
    assert paths.shape == (N, 6)
    qs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    for h in (1, 3, 6):
        z = stats.norm.ppf(qs) * s * np.sqrt(h)
        want = levels[-1] + z if kind == "additive" else levels[-1] * np.exp(z / 100)
        got = np.quantile(paths[:, h - 1], qs)
        np.testing.assert_allclose(got, want, atol=0.02 * s * np.sqrt(h) * (1 if kind == "additive" else
                                                                                 levels[-1] / 100 * 1.2))


@pytest.mark.parametrize("kind", ["additive", "log"])
def test_iid_gaussian_moments_match_the_closed_form(kind):
    rng = np.random.default_rng(1)
    incr = rng.normal(0.4, 2.0, 300)
    levels = _history(1, incr, 50.0 if kind == "additive" else 2000.0, kind)
    m, s = incr.mean(), incr.std(ddof=1)
    paths = bl.iid_gaussian(3, levels, 12, N, kind)
    for h in (1, 12):
        x = paths[:, h - 1] - levels[-1] if kind == "additive" else 100 * np.log(paths[:, h - 1] / levels[-1])
        assert x.mean() == pytest.approx(h * m, abs=4 * s * np.sqrt(h / N))
        assert x.std() == pytest.approx(s * np.sqrt(h), rel=0.01)


def test_same_seed_same_paths_and_every_baseline_in_units():
    rng = np.random.default_rng(2)
    levels = _history(2, rng.normal(0.5, 4.0, 200), 3000.0, "log")
    for name, fn in bl.BASELINES.items():
        a, b = fn(5, levels, 12, 500, "log"), fn(5, levels, 12, 500, "log")
        np.testing.assert_array_equal(a, b)
        assert a.shape == (500, 12) and np.all(np.isfinite(a)) and np.all(a > 0), name
        assert not np.array_equal(a, fn(6, levels, 12, 500, "log")), name
        assert np.median(a[:, 0]) == pytest.approx(levels[-1], rel=0.1), name   # starts at the origin level


def test_increments_and_their_refusals():
    lv = np.array([1.0, 2.0, np.nan, 4.0, 8.0] + [8.0] * 30)
    d = bl.increments(lv, "log")
    assert d[0] == pytest.approx(100 * np.log(2)) and np.all(np.isfinite(d))
    assert d.size == 32                                        # the two increments next to the gap are dropped
    assert bl.last_level(np.array([1.0, 2.0, np.nan])) == 2.0
    with pytest.raises(ValueError, match="positive"):
        bl.increments(np.r_[-1.0, np.ones(40)], "log")
    with pytest.raises(ValueError, match="at least"):
        bl.increments(np.ones(10), "additive")
    with pytest.raises(ValueError, match="kind"):
        bl.increments(np.ones(40), "ratio")
    assert bl.increment_kind("diff") == "additive" and bl.increment_kind("log") == "log"
    with pytest.raises(ValueError):
        bl.increment_kind("yoy_pct")


def _simulate_ms(rng, n, mean, sd, P):
    s, out, states = 0, np.empty(n), np.empty(n, int)
    for t in range(n):
        s = rng.choice(2, p=P[s])
        states[t], out[t] = s, rng.normal(mean[s], sd[s])
    return out, states


def test_markov_switching_recovers_two_regimes_and_transition_orientation():
    rng = np.random.default_rng(3)
    mean, sd = np.array([0.8, -1.5]), np.array([1.0, 4.0])
    P = np.array([[0.97, 0.03], [0.10, 0.90]])              # rows = from, columns = to
    x, states = _simulate_ms(rng, 3000, mean, sd, P)
    p = bl.markov_fit(x)
    k = np.argsort(p.sd)                                    # label switching: order by volatility
    np.testing.assert_allclose(p.mean[k], mean, atol=0.35)
    np.testing.assert_allclose(p.sd[k], sd, rtol=0.1)
    np.testing.assert_allclose(p.transition[np.ix_(k, k)], P, atol=0.03)
    np.testing.assert_allclose(p.transition.sum(1), 1.0)
    assert p.last[k][states[-1]] > 0.5                      # the filter knows the last regime


def test_markov_paths_follow_the_mixture_one_step_ahead():
    params = bl.MarkovParams(mean=np.array([1.0, -2.0]), sd=np.array([1.0, 3.0]),
                             transition=np.array([[0.9, 0.1], [0.2, 0.8]]), last=np.array([0.25, 0.75]))
    x = bl.markov_paths(4, params, 3, N)
    w = params.last @ params.transition                    # regime probabilities at month 1
    mu = w @ params.mean
    var = w @ (params.sd**2 + params.mean**2) - mu**2
    assert x[:, 0].mean() == pytest.approx(mu, abs=0.02)
    assert x[:, 0].var() == pytest.approx(var, rel=0.02)


def test_garch_recovers_parameters_and_simulates_the_variance_forecast():
    rng = np.random.default_rng(5)
    mu, omega, alpha, beta = 0.3, 0.2, 0.12, 0.8
    n = 5000
    e, s2 = np.empty(n), omega / (1 - alpha - beta)
    for t in range(n):
        e[t] = np.sqrt(s2) * rng.standard_normal()
        s2 = omega + alpha * e[t] ** 2 + beta * s2
    x = mu + e
    res = bl.garch_fit(x)
    p = res.params / np.array([res.scale, res.scale**2, 1, 1])  # back to data units
    assert p["mu"] == pytest.approx(mu, abs=0.06)
    assert p["alpha[1]"] == pytest.approx(alpha, abs=0.04)
    assert p["beta[1]"] == pytest.approx(beta, abs=0.06)
    assert p["alpha[1]"] + p["beta[1]"] == pytest.approx(alpha + beta, abs=0.03)
    levels = _history(5, x, 100.0, "additive")
    paths = bl.garch(7, levels, 6, 100_000, "additive")
    incr = np.diff(np.concatenate([np.full((len(paths), 1), levels[-1]), paths], axis=1), axis=1)
    analytic = res.forecast(horizon=6, reindex=False).variance.values[-1] / res.scale**2
    np.testing.assert_allclose(incr.var(axis=0), analytic, rtol=0.04)
    np.testing.assert_allclose(incr.mean(axis=0), p["mu"], atol=0.03)


@pytest.mark.parametrize("kind", ["additive", "log"])
def test_historical_simulation_replays_the_history_s_own_h_month_changes(kind):
    """Each h-month change is one of the T' - H + 1 windows' changes, drawn uniformly: the
    simulated distribution of the h-month change equals the empirical one of the windows."""
    rng = np.random.default_rng(7)
    incr = np.round(rng.standard_t(4, 120) * 2.0, 3)
    levels = _history(7, incr, 4.0 if kind == "additive" else 1000.0, kind)
    H = 12
    d = bl.increments(levels, kind)
    windows = np.lib.stride_tricks.sliding_window_view(d, H)              # (T' - H + 1, H)
    paths = bl.historical(3, levels, H, N, kind)
    change = paths - levels[-1] if kind == "additive" else 100 * np.log(paths / levels[-1])
    for h in (1, 5, 12):
        want = windows[:, :h].sum(1)                      # the history's h-month changes in the windows
        got = change[:, h - 1]
        # every simulated change is one of the windows' changes (to rounding) ...
        assert np.abs(got[:, None] - want[None, :]).min(1).max() < 1e-9
        # ... and each window is drawn with probability 1 / n_windows (chi-square of the counts)
        counts = np.bincount(np.abs(got[:5000, None] - want[None, :]).argmin(1), minlength=len(want))
        if len(np.unique(np.round(want, 9))) == len(want):
            assert stats.chisquare(counts).pvalue > 1e-3
        # the simulated CDF equals the windows' empirical CDF (DKW: sup gap ~ 0.004 at N = 200k)
        grid = np.sort(want)
        gap = np.searchsorted(np.sort(got), grid + 1e-9) / N - np.searchsorted(grid, grid + 1e-9) / len(grid)
        assert np.abs(gap).max() < 0.01
    # a path is one window: its months are consecutive increments of the history
    first = np.abs(change[:200, :1] - d[None, : len(windows)]).argmin(1)
    np.testing.assert_allclose(np.diff(np.concatenate([np.zeros((200, 1)), change[:200]], 1), axis=1),
                               windows[first], atol=1e-9)
    with pytest.raises(ValueError, match="windows of 110 months"):
        bl.historical(3, levels, 110, 10, kind)
