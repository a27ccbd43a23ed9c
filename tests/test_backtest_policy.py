"""The backtest's policy-state forecast against the Fed's recorded history (hand-computed
examples on the model file's own ``[history]``), and the refit ladder of an origin whose fit
fails the diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from regimecast.config.model_file import load_model_config
from regimecast.scoring import policy
from regimecast.workflows import backtest_origin as bto


@pytest.fixture(scope="module")
def config(workspace):
    return load_model_config(workspace.models / "default.toml")


def test_state_probabilities_are_shares_of_paths_per_horizon():
    # 2 draws x 3 paths x 4 months of state indices over 3 states
    s = np.array([[[0, 1, 2, 2], [0, 0, 2, 1], [1, 1, 1, 1]],
                  [[2, 2, 2, 2], [0, 1, 0, 0], [1, 2, 2, 0]]])
    p = policy.state_probabilities(s, ["a", "b", "c"], (1, 4))
    assert p["1"] == pytest.approx({"a": 3 / 6, "b": 2 / 6, "c": 1 / 6})
    assert p["4"] == pytest.approx({"a": 2 / 6, "b": 2 / 6, "c": 2 / 6})


def test_policy_record_against_the_fed_s_history(config):
    states = list(config.factor(config.transition_factor).states)
    assert {"crisis", "cut", "qe", "qt", "hold"} <= set(states)
    refs = policy.reference_states(config)
    assert "crisis" not in refs and {"cut", "qe", "qt", "cut_qt", "hike", "hold"} == set(refs)
    # origin 2019-05 (recorded qt, 2019-01..07); +3 months = 2019-08 (cut), +12 = 2020-05 (qe)
    p = {m: 0.0 for m in states}
    p3 = p | {"cut": 0.5, "crisis": 0.2, "qt": 0.3}
    p12 = p | {"qt": 0.6, "qe": 0.1, "crisis": 0.3}
    rec = policy.score_policy(config, {"3": p3, "12": p12}, "2019-05", "2020-01")
    assert rec["at_origin"] == "qt" and rec["horizons"] == [3, 12] and rec["reference_states"] == refs
    c3 = rec["cells"]["3"]
    assert c3["target_month"] == "2019-08" and c3["realised"] == "cut"
    # crisis counts for both cut and qe (``[history] agrees``)
    assert c3["prob_reference"]["cut"] == pytest.approx(0.7) and c3["prob_reference"]["qe"] == pytest.approx(0.2)
    assert c3["prob_reference"]["qt"] == pytest.approx(0.3)
    assert c3["brier"] == pytest.approx((0.7 - 1) ** 2 + 0.2 ** 2 + 0.3 ** 2)
    assert c3["modal"] == "cut" and c3["modal_right"] is True
    assert c3["persistence_brier"] == pytest.approx(2.0) and c3["persistence_right"] is False
    # 2020-05 is after the data's end (2020-01): not realised, nothing scored
    c12 = rec["cells"]["12"]
    assert c12["target_month"] == "2020-05" and c12["realised"] is None
    assert c12["brier"] is None and c12["modal_right"] is None and c12["modal"] == "qt"
    # with the data reaching 2020-05 it is realised as qe, and crisis (0.3) is not the modal state
    c12 = policy.score_policy(config, {"12": p12}, "2019-05", "2020-06")["cells"]["12"]
    assert c12["realised"] == "qe" and c12["modal_right"] is False
    assert c12["brier"] == pytest.approx(0.6 ** 2 + (0.4 - 1) ** 2 + 0.3 ** 2)   # qt, qe (0.1 + 0.3), cut (0.3)


def test_a_crisis_forecast_is_right_for_a_recorded_cut(config):
    states = list(config.factor(config.transition_factor).states)
    p = {m: 0.0 for m in states} | {"crisis": 0.9, "hold": 0.1}
    cell = policy.score_policy(config, {"6": p}, "2019-08", "2026-01")["cells"]["6"]
    assert cell["realised"] == policy.recorded_state(config, "2020-02") == "cut"
    assert cell["modal"] == "crisis" and cell["modal_right"] is True


@dataclass
class _Fit:
    diagnostics: dict
    settings: object
    wall_time_s: float = 1.0


class _Model:
    """Stands in for RegimeModel: its fits fail the diagnostics until ``ok_at`` draws."""

    def __init__(self, ok_at: int):
        self.ok_at, self.draws = ok_at, []

    def fit(self, sampler, thresholds, progressbar=False):
        self.draws.append(sampler.draws)
        ok = sampler.draws >= self.ok_at
        return _Fit({"trusted": ok, "reasons": [] if ok else ["FAIL tail ESS"]}, sampler)


def _job(max_retries: int, retry_factor: int = 2):
    s = bto.BacktestSettings(start="2015-01", every=6, horizons=(1,), seed=3, chains=2, draws=100, tune=50,
                             max_retries=max_retries, retry_factor=retry_factor)
    return type("Job", (), {"settings": s, "sampler": s.sampler(11), "thresholds": None})()


def test_an_untrusted_refit_is_refitted_longer_and_a_failing_one_is_kept_as_untrusted():
    m = _Model(ok_at=200)
    fit, attempts = bto.fit_until_trusted(m, _job(max_retries=2))
    assert m.draws == [100, 200] and fit.diagnostics["trusted"]
    assert [a["trusted"] for a in attempts] == [False, True] and attempts[0]["reasons"] == ["FAIL tail ESS"]
    assert fit.settings.seed == 11                                   # same seed, more draws
    m = _Model(ok_at=10_000)
    fit, attempts = bto.fit_until_trusted(m, _job(max_retries=1, retry_factor=3))
    assert m.draws == [100, 300] and not fit.diagnostics["trusted"] and len(attempts) == 2
    m = _Model(ok_at=10_000)
    bto.fit_until_trusted(m, _job(max_retries=0))
    assert m.draws == [100]


def test_backtest_settings_default_to_the_production_sampler_and_check_the_ladder():
    from regimecast.config.defaults import SAMPLER

    s = bto.BacktestSettings(start="2015-01", every=6, horizons=(12, 1), seed=3)
    assert (s.chains, s.draws, s.tune) == (SAMPLER["chains"], SAMPLER["draws"], SAMPLER["tune"])
    assert s.policy_horizons == policy.POLICY_HORIZONS == (3, 6, 12) and s.horizons == (1, 12)
    with pytest.raises(ValueError, match="max_retries = -1"):
        replace(s, max_retries=-1)
    with pytest.raises(ValueError, match="retry_factor = 0"):
        replace(s, retry_factor=0)
    with pytest.raises(ValueError, match="policy horizons"):
        replace(s, policy_horizons=(0, 3))
