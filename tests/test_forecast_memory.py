"""Forecast memory (issue 21, item 16): paths are simulated in chunks of at most
``chunk`` draws x ``path_chunk`` paths whatever ``--paths`` is, the numbers are bit-identical
per seed for a given chunking, and a forecast that cannot fit is refused before simulating,
with the memory it would need. Through the prior predictive (the same ``run_forecast`` as a
posterior forecast, no fit needed)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from regimecast import api
from regimecast.simulate import forecast
from regimecast.errors import ResourceError
from regimecast.simulate.forecast import ForecastSettings

SMALL = dict(seed=11, horizon=24, paths=50, max_draws=6, chunk=3)


def _summary(workspace, fred_dir, **kw) -> xr.Dataset:
    return api.prior_predictive(workspace, "baseline", ForecastSettings(**(SMALL | kw)), data_dir=fred_dir)


@pytest.fixture(scope="module")
def spied(workspace, fred_dir):
    """The path counts of every compiled simulation call of a chunked run, and its summary."""
    calls: list[int] = []
    real = forecast.simulate_forward

    def spy(key, params, probs0, origin, spec, n_paths, *args, **kw):
        calls.append(n_paths)
        return real(key, params, probs0, origin, spec, n_paths, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(forecast, "simulate_forward", spy)
        summary = _summary(workspace, fred_dir, path_chunk=20)
    return calls, summary


def test_paths_are_simulated_in_bounded_chunks(spied):
    """50 paths per draw in calls of at most 20 (20, 20, 10): one compilation per size."""
    calls, summary = spied
    assert sorted(set(calls)) == [10, 20]
    assert summary["scenario_prob"].sizes["draw"] == 6
    assert np.all(summary.attrs["paths_per_draw"] == 50)
    n = summary["scenario_paths"].values
    assert np.all(n <= 6 * 50) and np.all(n >= 0)


def test_same_chunking_is_bit_identical(spied, workspace, fred_dir):
    _, first = spied
    xr.testing.assert_identical(first, _summary(workspace, fred_dir, path_chunk=20))


def test_chunks_draw_fresh_numbers(spied, workspace, fred_dir):
    """Each path chunk has its own key: a chunk of 20 is not the next chunk again."""
    _, chunked = spied
    whole = _summary(workspace, fred_dir, path_chunk=50)
    assert not np.array_equal(chunked["quantiles"].values, whole["quantiles"].values)
    np.testing.assert_allclose(chunked["quantiles"].sel(quantile=0.5).values,
                               whole["quantiles"].sel(quantile=0.5).values, rtol=0.25, atol=0.5)


def test_what_cannot_fit_is_refused_with_the_memory_it_needs(workspace, fred_dir, monkeypatch):
    monkeypatch.setattr(forecast, "available_memory", lambda: 10**5)
    calls: list[int] = []
    monkeypatch.setattr(forecast, "simulate_forward", lambda *a, **k: calls.append(1))
    with pytest.raises(ResourceError, match=r"needs about 0\.5 MB for each simulation call of 3 draws x 50 paths, but 0\.1 MB is available"):
        _summary(workspace, fred_dir)
    assert calls == []                                   # refused before simulating


def test_store_mode_counts_every_path_kept(monkeypatch):
    monkeypatch.setattr(forecast, "available_memory", lambda: 2 * 10**9)
    s = ForecastSettings(seed=1, paths=100_000, max_draws=500)
    forecast.check_memory(s, 500, 7, 3, store=False)     # the chunk fits: summary mode runs
    with pytest.raises(ResourceError, match=r"37\.20 GB to keep 500 draws x 100,000 paths x 24 months.*--summary-only"):
        forecast.check_memory(s, 500, 7, 3, store=True)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("horizon", 100000, "at most 600 months"), ("path_chunk", 0, "must be at least 1")])
def test_settings_out_of_range(field, value, words):
    """issue 21 item 14: --horizon 100000 was a pandas timestamp error after simulating."""
    with pytest.raises(ValueError, match=f"{field} = {value}: {words}"):
        ForecastSettings(seed=1, **{field: value})
