"""Narrative prior sets (priors/*.toml beside baseline): each validates, extends the baseline,
cites its source documents and changes exactly the parameters it claims; prior draws follow the
prior; the prior predictive tells narratives apart; broken files and ``priors check`` fail
clearly."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from regimecast import api
from regimecast.cli.priors import app as priors_app
from regimecast.errors import ConfigError
from regimecast.simulate.forecast import ForecastSettings
from regimecast.model.kernels import corr_cholesky, corr_log_prior
from regimecast.model.spec import structure, variable_spec
from regimecast.config.prior_range import lkj_concentrations
from regimecast.model.prior_draws import lkj_unconstrained, prior_draws
from regimecast.simulate.prior_predictive import check_prior_file, prior_changes
from regimecast.config.priors import load_priors
from regimecast.store.workspace import Workspace

from conftest import prior_folder

FIXTURES = Path(__file__).parent / "fixtures" / "narratives"
ENV = {"COLUMNS": "200"}

# Every narrative file and exactly the (block, key) pairs its comments say it changes.
NARRATIVES = {
    "soft_landing": {
        ("transition.switch", "hold->cut_qt"), ("transition.switch", "qt->cut_qt"),
        ("transition.switch", "cut->cut_qt"),
        ("transition.factors", "ai.realised.enter.cut_qt"), ("transition.factors", "ai.realised.stay.cut_qt"),
        ("transition.ai", "delayed->delayed"), ("transition.ai", "delayed->realised"),
        ("emission.effects", "ai.realised.inflation"),
    },
    "reverse_qe": {("emission.effects", "ai.realised.y10"), ("emission.effects", "ai.realised.equity")},
    "ai_vs_backlash": {
        ("transition.backlash", "low->high"), ("transition.backlash", "high->high"),
        ("emission.effects", "backlash.high.y10"), ("emission.effects", "backlash.high.inflation"),
        ("emission.effects", "ai.realised.inflation"),
        ("transition.factors", "backlash.high.enter.hike"), ("transition.factors", "backlash.high.enter.hike_qt"),
    },
    "qe_restart": {
        ("transition.covariates", "qe.drawdown"), ("transition.covariates", "crisis.drawdown"),
        ("transition.covariates", "qe.liquidity"), ("emission.mean", "qe.equity"), ("emission.mean", "qe.gold"),
    },
    "higher_for_longer": {
        ("transition.switch", "hold->cut"), ("transition.switch", "qt->cut"), ("transition.switch", "hold->cut_qt"),
        ("transition.switch", "qt->cut_qt"), ("transition.switch", "cut->hold"), ("transition.switch", "cut_qt->qt"),
        ("transition.covariates", "cut.inflation"), ("transition.covariates", "cut_qt.inflation"),
        ("transition.ai", "delayed->delayed"),
    },
}
# The policy states are identified by the Fed's own instruments: no narrative may touch them.
IDENTIFYING_SERIES = ("fedfunds", "balance_sheet")
# A narrative tilts the baseline; it does not overrule it: a Normal location moves by at most
# this many baseline sds, a scale by at most this factor either way.
MAX_SHIFT_SDS = 2.0
MAX_SCALE_FACTOR = 2.0


@pytest.fixture(scope="module")
def config(model_bundle):
    return model_bundle.config


@pytest.fixture(scope="module")
def checks(config, repo_root):
    return {n: check_prior_file(repo_root / "priors" / f"{n}.toml", config) for n in NARRATIVES}


def _cli(ws: Workspace, *args: str):
    root = typer.Typer()

    @root.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = {"workspace": ws}

    root.add_typer(priors_app, name="priors")
    return CliRunner().invoke(root, ["priors", *args], env=ENV)


# ---- the narrative files -----------------------------------------------------------------
def test_every_prior_file_is_baseline_or_a_listed_narrative(repo_root):
    assert {p.stem for p in (repo_root / "priors").glob("*.toml")} == {"baseline", *NARRATIVES}


@pytest.mark.parametrize("name", sorted(NARRATIVES))
def test_narrative_extends_baseline_and_cites_its_sources(name, checks, fred_dir):
    chk = checks[name]
    assert chk.priors.chain == ("baseline.toml", f"{name}.toml") and chk.priors.name == name
    assert chk.parent is not None and chk.parent.name == "baseline"
    sources = chk.priors.doc["source"]
    seeds = fred_dir.parent.parent / "seeds"
    assert sources and all((seeds / s).is_file() for s in sources)
    comments = "\n".join(line for line in chk.priors.text.splitlines() if line.lstrip().startswith("#"))
    assert all(s in comments for s in sources)               # cited in the prose, not only in the key


@pytest.mark.parametrize("name", sorted(NARRATIVES))
def test_narrative_changes_exactly_the_claimed_keys(name, checks):
    assert checks[name].changed_labels == NARRATIVES[name]


@pytest.mark.parametrize("name", sorted(NARRATIVES))
def test_narrative_tilts_but_keeps_the_identification(name, checks):
    chk = checks[name]
    assert not [c for c in chk.changes if c.label.split(".")[-1] in IDENTIFYING_SERIES]
    base = chk.parent.arrays
    for c in chk.changes:
        if c.param == "mu":
            assert abs(c.value - c.parent) <= MAX_SHIFT_SDS * base[c.block].params["sigma"][c.index], c
        elif c.param == "sigma":
            assert 1 / MAX_SCALE_FACTOR <= c.value / c.parent <= MAX_SCALE_FACTOR, c


def test_changes_of_a_root_file_and_of_itself_are_empty(config, repo_root):
    base = load_priors(repo_root / "priors" / "baseline.toml", config)
    assert check_prior_file(repo_root / "priors" / "baseline.toml", config).parent is None
    assert prior_changes(base, base) == []


# ---- prior draws -----------------------------------------------------------------------
N_DRAWS = 40_000
Z_TOL = 5.0          # |sample mean - mean| within 5 Monte Carlo standard errors (~300 moments tested)
VAR_RTOL = 0.06      # sample variance within 6% (4-5 of its standard errors at N_DRAWS for these families)


@pytest.fixture(scope="module")
def baseline_draws(model_bundle):
    st = structure(model_bundle.config, model_bundle.priors)
    spec = variable_spec(model_bundle.config, model_bundle.priors, st)
    return spec, st, prior_draws(np.random.default_rng(20261123), spec, N_DRAWS)


def _check_moments(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> None:
    se = np.sqrt(var / x.shape[0])
    assert np.all(np.abs(x.mean(0) - mean) <= Z_TOL * se)
    np.testing.assert_allclose(x.var(0, ddof=1), var, rtol=VAR_RTOL)


def test_prior_draws_have_every_variable_with_its_shape(baseline_draws):
    spec, _, draws = baseline_draws
    assert list(draws) == list(spec)
    for name, v in spec.items():
        assert draws[name].shape == (N_DRAWS, *v.shape) and np.all(np.isfinite(draws[name]))


def test_normal_blocks_in_natural_units_match_the_prior(baseline_draws, model_bundle):
    """Non-centred z draws, mapped as kernels.assemble maps them, have the prior file's mu, sigma."""
    from regimecast.model.spec import NORMAL_BLOCKS

    _, st, draws = baseline_draws
    for block, name in NORMAL_BLOCKS.items():
        p = model_bundle.priors.arrays[block].params
        mu, sigma = p["mu"], p["sigma"]
        if name == "switch":
            off = ~np.eye(mu.shape[0], dtype=bool)
            mu, sigma = mu[off], sigma[off]
        natural = st.loc[name] + st.scale[name] * draws[f"{name}_z"]
        _check_moments(natural, mu, sigma**2)


def test_dirichlet_beta_gamma_blocks_match_closed_forms(baseline_draws):
    spec, _, draws = baseline_draws
    for name, v in spec.items():
        x = draws[name]
        if v.kind == "dirichlet":
            a = np.asarray(v.params[0])
            a0 = a.sum(-1, keepdims=True)
            _check_moments(x, a / a0, a * (a0 - a) / (a0**2 * (a0 + 1)))
            np.testing.assert_allclose(x.sum(-1), 1.0, atol=1e-12)
        elif v.kind == "beta":
            al, be = np.asarray(v.params[0]), np.asarray(v.params[1])
            _check_moments(x, al / (al + be), al * be / ((al + be) ** 2 * (al + be + 1)))
        elif v.kind == "gamma":
            al, rate = v.params
            _check_moments(x, np.asarray(al / rate), np.asarray(al / rate**2))


def test_lkj_correlations_have_the_lkj_beta_marginal(baseline_draws):
    """Every correlation r_ij of the implied matrices: (r + 1)/2 ~ Beta(eta - 1 + d/2, same) (KS)."""
    spec, st, draws = baseline_draws
    _, dim, eta = spec["corr"].params
    w = draws["corr"][:, 0]                                    # one policy state's matrices
    with jax.enable_x64(True):
        L = np.asarray(corr_cholesky({"corr": jnp.asarray(w)}))
    R = L @ np.swapaxes(L, -1, -2)
    a = eta - 1 + dim / 2
    for i, j in zip(*np.tril_indices(dim, -1)):
        assert stats.kstest((R[:, i, j] + 1) / 2, stats.beta(a, a).cdf).pvalue > 1e-3, (i, j)
    np.testing.assert_allclose(np.diagonal(R, axis1=1, axis2=2), 1.0, atol=1e-12)


def test_lkj_draws_have_exactly_the_models_prior_density(model_bundle):
    """The sampler's density of the unconstrained corr values (independent artanh(2 Beta - 1)
    CPCs) equals the model's LKJ density plus Jacobian (kernels.corr_log_prior), both normalised."""
    st = structure(model_bundle.config, model_bundle.priors)
    dim, eta = st.n_series, st.lkj_eta
    w = lkj_unconstrained(np.random.default_rng(3), dim, eta, (50,))
    c = lkj_concentrations(dim, eta)
    t = np.tanh(w)
    ours = np.sum(stats.beta(c, c).logpdf((1 + t) / 2) + np.log((1 - t**2) / 2), axis=-1)
    with jax.enable_x64(True):
        model = np.asarray(jax.vmap(lambda x: corr_log_prior({"corr": x[None]}, st))(jnp.asarray(w)))
    np.testing.assert_allclose(model, ours, atol=1e-9)


def test_prior_draws_are_seeded_and_share_random_numbers_across_prior_sets(config, checks, model_bundle):
    """Same seed: same draws. A prior set differing in one Dirichlet block draws every other
    variable from the same random numbers (common random numbers between narratives)."""
    base = model_bundle.priors
    hfl = checks["higher_for_longer"].priors                 # changes transition.ai (Dirichlet)
    spec_b = variable_spec(config, base, structure(config, base))
    spec_h = variable_spec(config, hfl, structure(config, hfl))
    a = prior_draws(np.random.default_rng(11), spec_b, 50)
    b = prior_draws(np.random.default_rng(11), spec_b, 50)
    h = prior_draws(np.random.default_rng(11), spec_h, 50)
    for k in spec_b:
        np.testing.assert_array_equal(a[k], b[k])
        if k != "transition_ai":
            np.testing.assert_array_equal(a[k], h[k])
    assert not np.array_equal(a["transition_ai"], h["transition_ai"])


# ---- the prior predictive --------------------------------------------------------------
SHOW = ForecastSettings(seed=20261123, horizon=24, paths=40, max_draws=80, chunk=40)
QE_MARGIN = 0.04     # QE-restart narrative: P(qe or crisis within 12 months) at least 4 points above baseline


@pytest.fixture(scope="module")
def predictive(workspace, fred_dir):
    """Baseline and four narratives through the API; the QE-restart narrative through
    ``regimecast priors show`` (the summary the command prints is kept by a spy on the API
    function it calls)."""
    out = {n: api.prior_predictive(workspace, n, SHOW, data_dir=fred_dir)
           for n in ["baseline", *(n for n in NARRATIVES if n != "qe_restart")]}
    real = api.prior_predictive

    def spy(*args, **kwargs):
        out["qe_restart"] = real(*args, **kwargs)
        return out["qe_restart"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "prior_predictive", spy)
        res = _cli(workspace, "show", "qe_restart", "--draws", str(SHOW.max_draws), "--paths", str(SHOW.paths),
                   "--horizon", str(SHOW.horizon), "--seed", str(SHOW.seed), "--data-dir", str(fred_dir))
    assert res.exit_code == 0, res.output
    out["output"] = res.output
    return out


def test_prior_predictive_summary_is_coherent(predictive, model_bundle):
    s = predictive["baseline"]
    assert s.attrs["kind"] == "prior_predictive" and s.attrs["prior_chain"] == "baseline.toml"
    assert s.attrs["origin_date"] == f"{model_bundle.design.dates[-1]:%Y-%m}"
    assert "filtered from the data under each prior draw" in s.attrs["note"]
    assert s.sizes["draw"] == SHOW.max_draws
    np.testing.assert_allclose(s["policy_prob"].sum("policy"), 1.0, atol=1e-9)
    p = s["scenario_prob"]
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    # nested events: within 6 <= within 12 <= within 24 months, draw by draw
    assert np.all(p.sel(scenario="qe_restart_6m") <= p.sel(scenario="qe_restart_12m"))
    assert np.all(p.sel(scenario="qe_restart_12m") <= p.sel(scenario="qe_restart_24m"))


def test_qe_restart_narrative_raises_the_qe_restart_probability(predictive):
    """Same seed, so both prior sets use the same random numbers draw by draw: the paired
    difference has a small Monte Carlo error."""
    d = (predictive["qe_restart"]["scenario_prob"] - predictive["baseline"]["scenario_prob"]).sel(
        scenario="qe_restart_12m").values
    mcse = d.std(ddof=1) / np.sqrt(d.size)
    print(f"qe_restart - baseline, P(QE restart within 12 months): {d.mean():.3f} (MCSE {mcse:.3f})")
    assert d.mean() > QE_MARGIN and d.mean() > 4 * mcse, (d.mean(), mcse)
    # and through the claimed channel: more draws enter QE after a drawdown beyond 20%
    burst = (predictive["qe_restart"]["scenario_prob"] - predictive["baseline"]["scenario_prob"]).sel(
        scenario="bubble_burst_then_qe").values
    assert burst.mean() > 4 * burst.std(ddof=1) / np.sqrt(burst.size)


# What each narrative is about, as a quantity of the prior predictive: scenarios by name, policy
# states at 12 months as "P12 <states>" (summed), and the direction its claim moves it.
SIGNATURES = {
    "soft_landing": ("P12 cut_qt", +1),                   # the Fed cuts while shrinking its balance sheet
    "reverse_qe": ("y10_above_5", +1),                    # AI capex lifts yields
    "ai_vs_backlash": ("P12 hike hike_qt", +1),           # inflation returns and the Fed hikes again
    "qe_restart": ("qe_restart_12m", +1),
    "higher_for_longer": ("P12 cut cut_qt", -1),          # cuts keep slipping
}
SIGNATURE_MARGIN = 0.03   # at least 3 points, and 4 paired Monte Carlo standard errors


def _quantity(summary, key: str) -> np.ndarray:
    if key.startswith("P12 "):
        return summary["policy_prob"].sel(policy_horizon=12, policy=key.split()[1:]).sum("policy").values
    return summary["scenario_prob"].sel(scenario=key).values


@pytest.mark.parametrize("name", sorted(NARRATIVES))
def test_each_narrative_moves_its_own_quantity_in_the_prior_predictive(predictive, name):
    """Paired (common random numbers) difference to the baseline, in the claim's direction."""
    key, sign = SIGNATURES[name]
    d = sign * (_quantity(predictive[name], key) - _quantity(predictive["baseline"], key))
    mcse = d.std(ddof=1) / np.sqrt(d.size)
    print(f"{name} - baseline, {key}: {sign * d.mean():+.3f} (MCSE {mcse:.3f})")
    assert d.mean() > SIGNATURE_MARGIN and d.mean() > 4 * mcse, (d.mean(), mcse)


# ---- broken files and the CLI ----------------------------------------------------------
BROKEN = [
    ("bad_narrative_unknown_key.toml", 'transition.covariates."qe.drawdown".sd', 0.5),
    ("bad_narrative_negative_sigma.toml", 'emission.mean."qe.equity".sigma', -2.0),
    ("bad_narrative_unknown_state.toml", 'transition.switch."hold->taper"', "taper"),
]


@pytest.fixture()
def prior_dir(tmp_path):
    return prior_folder(tmp_path, FIXTURES)


@pytest.mark.parametrize("fixture, key, value", BROKEN)
def test_broken_narrative_names_file_key_value(config, prior_dir, workspace, fixture, key, value):
    with pytest.raises(ConfigError) as exc:
        check_prior_file(prior_dir / fixture, config)
    assert exc.value.file.endswith(fixture) and exc.value.key == key and exc.value.value == value
    res = _cli(workspace, "check", str(prior_dir / fixture))
    assert res.exit_code == 1
    assert fixture in res.output and key in res.output and repr(value) in res.output


def test_priors_check_prints_chain_sources_and_changes(workspace):
    res = _cli(workspace, "check", "qe_restart")
    assert res.exit_code == 0, res.output
    assert "baseline.toml -> qe_restart.toml" in res.output and "003_501822f51de77b77.txt" in res.output
    for _, label in NARRATIVES["qe_restart"]:
        assert label in res.output
    assert "5 keys differ from baseline.toml" in res.output
    root = _cli(workspace, "check", "baseline")
    assert root.exit_code == 0 and "root prior set" in root.output


def test_priors_show_prints_policy_and_scenario_tables(predictive, workspace, fred_dir, model_bundle):
    out, summary = predictive["output"], predictive["qe_restart"]
    origin = f"{model_bundle.design.dates[-1]:%Y-%m}"
    assert f"'qe_restart' (baseline.toml -> qe_restart.toml): {SHOW.max_draws} prior draws x {SHOW.paths} paths " \
           f"x {SHOW.horizon} months from {origin}" in out
    assert "filtered from the data under each prior draw" in out
    for state in model_bundle.config.factor("policy").states:
        assert state in out
    for name in summary["scenario"].values:
        assert name in out
    p12 = float(summary["scenario_prob"].sel(scenario="qe_restart_12m").mean())
    assert f"{p12:.3f}" in out                                  # the printed number is the summary's
    short = _cli(workspace, "show", "soft_landing", "--horizon", "6", "--data-dir", str(fred_dir))
    assert short.exit_code == 1 and "horizon 6" in short.output
