"""Prior files: validation errors name file, key and value; ``extends`` merges; resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regimecast.config.model_file import load_model_config
from regimecast.errors import ConfigError
from regimecast.config.priors import load_priors

from conftest import prior_folder

FIXTURES = Path(__file__).parent / "fixtures" / "priors"


@pytest.fixture(scope="module")
def config(repo_root):
    return load_model_config(repo_root / "models" / "default.toml")


@pytest.fixture()
def prior_dir(tmp_path):
    return prior_folder(tmp_path, FIXTURES)


def test_baseline_resolves_with_expected_shapes(config, repo_root):
    ps = load_priors(repo_root / "priors" / "baseline.toml", config)
    assert ps.arrays["emission.mean"].shape == (8, 7)
    assert ps.arrays["transition.switch"].shape == (8, 8)
    assert ps.arrays["transition.covariates"].shape == (8, 4)
    assert ps.arrays["transition.factors"].shape == (2, 2, 8)     # (ai.realised, backlash.high) x (stay, enter) x policy
    mean = ps.arrays["emission.mean"]
    qe, bs = mean.coords[0].index("qe"), mean.coords[1].index("balance_sheet")
    assert mean.params["mu"][qe, bs] == 2.0 and mean.params["sigma"][qe, bs] == 0.5
    hold, eq = mean.coords[0].index("hold"), mean.coords[1].index("equity")
    assert mean.params["mu"][hold, eq] == 0.8                        # per-series default
    np.testing.assert_allclose(ps.arrays["transition.ai"].params["a"], [[60, 1], [1, 60]])
    assert ps.arrays["initial.policy"].params["a"].tolist() == [1.0] * 8
    assert len(ps.sha256) == 64 and ps.chain == ("baseline.toml",)


def test_extends_overrides_only_named_entries(config, prior_dir):
    base = load_priors(prior_dir / "baseline.toml", config)
    child = load_priors(prior_dir / "good_child.toml", config)
    assert child.chain == ("baseline.toml", "good_child.toml") and child.name == "child"
    b, c = base.arrays["transition.covariates"], child.arrays["transition.covariates"]
    i, j = c.coords[0].index("qe"), c.coords[1].index("drawdown")
    assert (c.params["mu"][i, j], c.params["sigma"][i, j]) == (1.0, 0.25)
    mask = np.ones_like(c.params["mu"], dtype=bool)
    mask[i, j] = False
    np.testing.assert_array_equal(c.params["mu"][mask], b.params["mu"][mask])
    assert child.sha256 != base.sha256


@pytest.mark.parametrize("fixture, key, value", [
    ("bad_unknown_key.toml", 'emission.mean."qe.balance_sheet".sd', 2.0),
    ("bad_dist_name.toml", 'transition.switch."cut->qe".dist', "Gaussian"),
    ("bad_wrong_family.toml", "emission.ar.vix.dist", "Normal"),
    ("bad_negative_scale.toml", 'transition.covariates."qe.drawdown".sigma', -0.5),
    ("bad_zero_concentration.toml", "transition.ai.delayed.realised", 0.0),
    ("bad_unknown_state.toml", 'emission.mean."taper.balance_sheet"', "taper"),
    ("bad_unknown_series.toml", 'emission.mean."qe.bitcoin"', "bitcoin"),
    ("bad_schema_version.toml", "schema_version", 99),
    ("bad_stay_switch.toml", 'transition.switch."qe->qe"', "qe->qe"),
    # issue 21: a name that is a path, a non-UTF-8 file, priors whose draws are unusable
    ("bad_name_escape.toml", "name", "x/../../../../escaped"),
    ("bad_not_utf8.toml", "<file>", None),
    ("bad_degenerate_gamma.toml", "emission.nu", {"alpha": 1e300, "beta": 1e-300}),
    ("bad_point_mass.toml", 'emission.mean."qe.balance_sheet"', {"mu": 2.0, "sigma": 1e-300}),
    ("bad_dirichlet_boundary.toml", 'transition.ai."delayed.delayed"', {"a": 1e-300}),
])
def test_broken_prior_files_name_file_key_value(config, prior_dir, fixture, key, value):
    with pytest.raises(ConfigError) as exc:
        load_priors(prior_dir / fixture, config)
    err = exc.value
    assert err.key == key and err.value == value
    msg = str(err)
    assert fixture in msg and key in msg and repr(value) in msg


def test_extends_may_not_leave_the_prior_folder(config, tmp_path, repo_root):
    """Issue 21, item 3: ``extends = "../outside/escape"`` names a file that exists outside
    the folder; it is refused, not followed (nor an absolute path)."""
    import shutil

    (tmp_path / "outside").mkdir()
    shutil.copy(repo_root / "priors" / "baseline.toml", tmp_path / "outside" / "escape.toml")
    (tmp_path / "priors").mkdir()
    folder = prior_folder(tmp_path / "priors", FIXTURES)
    with pytest.raises(ConfigError) as exc:
        load_priors(folder / "bad_extends_outside.toml", config)
    assert (exc.value.key, exc.value.value) == ("extends", "../outside/escape")
    assert "bad_extends_outside.toml" in str(exc.value) and "same folder" in str(exc.value)
    (folder / "abs.toml").write_text(f'schema_version = 1\nextends = "{tmp_path / "outside" / "escape.toml"}"\n')
    with pytest.raises(ConfigError, match="key 'extends'"):
        load_priors(folder / "abs.toml", config)


def test_unusable_priors_are_refused_but_firm_ones_pass(config, tmp_path, repo_root):
    """Issue 21, item 13: the range check refuses only unusable draws; the narratives' firm
    priors (sigma 0.002 on fed funds) and sparse but finite Dirichlets stay valid."""
    for f in (repo_root / "priors").glob("*.toml"):
        load_priors(f, config)
    (tmp_path / "baseline.toml").write_text((repo_root / "priors" / "baseline.toml").read_text())
    (tmp_path / "p.toml").write_text('schema_version = 1\nextends = "baseline"\n[emission.lkj]\neta = 1e300\n')
    with pytest.raises(ConfigError, match="emission.lkj.*point mass"):
        load_priors(tmp_path / "p.toml", config)
    (tmp_path / "p.toml").write_text('schema_version = 1\nextends = "baseline"\n[emission.ar]\n'
                                     'vix = { alpha = 0.5, beta = 0.5 }\n')
    load_priors(tmp_path / "p.toml", config)


def test_missing_parent_and_cycle(config, tmp_path):
    (tmp_path / "a.toml").write_text('schema_version = 1\nextends = "b"\n')
    with pytest.raises(ConfigError, match="no prior file"):
        load_priors(tmp_path / "a.toml", config)
    (tmp_path / "b.toml").write_text('schema_version = 1\nextends = "a"\n')
    with pytest.raises(ConfigError, match="circular extends"):
        load_priors(tmp_path / "a.toml", config)


def test_missing_default_is_reported(config, tmp_path, repo_root):
    text = (repo_root / "priors" / "baseline.toml").read_text().replace(
        'default = { mu = -4.0, sigma = 1.5 }', '')
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(ConfigError, match="no prior for hike->hold, hike->qt"):
        load_priors(tmp_path / "p.toml", config)
