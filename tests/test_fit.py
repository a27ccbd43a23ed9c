"""A real (tiny) fit on the real panel: the run store, the InferenceData layout, seed
determinism, and refusal of tampered runs. Sampling settings are tiny: these tests check
plumbing and exactness, not convergence (the slow tier and the benchmark do that)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from regimecast import api
from regimecast.errors import RunError
from regimecast.fit.sampler import SamplerSettings
from regimecast.store.runs import load_run, resolve_run

from conftest import END, TINY


def test_run_directory_and_manifest(tiny_fit, fred_dir):
    path, _ = tiny_fit
    assert {"idata.nc", "manifest.json"} <= {p.name for p in path.iterdir()}   # (+ forecast files)
    m = json.loads((path / "manifest.json").read_text())
    assert m["run_id"] == path.name and m["seed"] == 7
    assert m["data"]["end"] == END and m["data"]["start"] == "2003-01" and m["data"]["months"] == 132
    assert set(m["diagnostics"]) >= {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi",
                                     "trusted", "reasons"}
    assert m["priors"]["chain"] == ["baseline.toml"] and len(m["priors"]["sha256"]) == 64
    assert "[[factors]]" in m["model"]["text"]
    assert m["data"]["provenance"]["equity"]["fred_id"] == "NASDAQCOM"
    assert m["packages"]["pymc"].startswith("5.28")
    # spelled out, not SamplerSettings(...).as_dict(): a field the manifest drops or renames fails here
    assert m["sampler"] == {"seed": 7, "backend": "nutpie", "chains": 2, "draws": 30, "tune": 30,
                            "target_accept": 0.85, "init": "map", "map_restarts": 2, "map_maxiter": 200,
                            "map_anneal": [0.01, 0.03, 0.1, 0.3, 1.0], "mass_matrix": "low_rank"}
    assert SamplerSettings(**m["sampler"]) == SamplerSettings(seed=7, **TINY)        # and it reads back
    post = load_run(path).idata.posterior
    assert (post.sizes["chain"], post.sizes["draw"]) == (2, 30)                     # the settings were used
    init = m["init"]
    assert init["method"] == "map" and init["restarts"] == 2 and len(init["logp"]) == 2
    assert init["logp"] == sorted(init["logp"], reverse=True)                       # best first
    gap = init["logp"][0] - init["logp"][1]                                         # modes: > 1 nat apart
    assert init["distinct_modes"] == (2 if gap > 1.0 else 1)
    assert init["best_mode_hits"] == (1 if gap > 1.0 else 2)


def test_inference_data_layout(tiny_fit):
    run = load_run(tiny_fit[0])
    idata = run.idata
    for g in ("posterior", "sample_stats", "observed_data", "log_likelihood"):
        assert g in idata.groups()
    post = idata.posterior
    assert post["filtered_policy"].dims == ("chain", "draw", "date", "policy")
    assert post["smoothed_backlash"].dims == ("chain", "draw", "date", "backlash")
    assert list(post["policy"].values) == ["hike", "hold", "qt", "cut", "cut_qt", "qe", "crisis", "hike_qt"]
    for f in ("policy", "ai", "backlash"):
        for kind in ("filtered", "smoothed"):
            np.testing.assert_allclose(post[f"{kind}_{f}"].sum(f).values, 1.0, atol=1e-5)
    y = idata.log_likelihood["y"]
    assert y.dims == ("chain", "draw", "date") and y.sizes["date"] == 132
    assert np.all(np.isfinite(y.values))
    assert post["mean"].dims == ("chain", "draw", "policy", "series")
    corr = post["correlation"].values
    np.testing.assert_allclose(np.diagonal(corr, axis1=-2, axis2=-1), 1.0, atol=1e-10)
    assert idata.observed_data["y"].dims == ("date", "series")


def test_same_seed_gives_bit_identical_draws(tiny_fit, workspace, fred_dir):
    path2, _ = api.fit(workspace, SamplerSettings(seed=7, **TINY), data_dir=fred_dir, end=END, progressbar=False)
    a, b = load_run(tiny_fit[0]).idata.posterior, load_run(path2).idata.posterior
    for name in ("mean_z", "switch_z", "corr", "nu_excess", "smoothed_policy"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert path2.name.split("-")[-1] == tiny_fit[0].name.split("-")[-1]   # same inputs, same hash suffix


def test_tampered_or_incomplete_runs_are_refused(tiny_fit, tmp_path):
    bad = tmp_path / tiny_fit[0].name
    shutil.copytree(tiny_fit[0], bad)
    with open(bad / "idata.nc", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(RunError, match="does not match the manifest"):
        load_run(bad)
    (bad / "manifest.json").unlink()
    with pytest.raises(RunError, match="incomplete"):
        load_run(bad)
    assert resolve_run(tiny_fit[0].parent, "latest").is_dir()


def test_numpyro_backend_samples_the_same_model_through_the_jax_kernels(model_bundle):
    """``--backend numpyro`` compiles the potential with the JAX backend of the Op (the JAX
    kernels): a tiny run gives finite draws whose log density, evaluated by the numba-compiled
    model, equals NumPyro's own record of it to rounding."""
    from regimecast.fit.sampler import sample

    model = model_bundle.model
    settings = SamplerSettings(seed=3, backend="numpyro", chains=1, draws=5, tune=5, init="jitter")
    idata, _, _ = sample(model, settings, progressbar=False)
    post = idata.posterior
    assert post.sizes["draw"] == 5 and all(np.isfinite(post[v].values).all() for v in post.data_vars)
    logp = model.compile_logp(mode="NUMBA", jacobian=True)
    names = [v.name for v in model.value_vars]
    point = {}
    for rv, value_var in zip(model.free_RVs, model.value_vars):
        transform = model.rvs_to_transforms[rv]
        x = post[rv.name].values[0, -1]
        point[value_var.name] = transform.forward(x, *rv.owner.inputs).eval() if transform is not None else x
    assert set(point) == set(names)
    # PyMC 5.28 stores NumPyro's potential energy (minus the log density) as "lp"
    assert float(logp(point)) == pytest.approx(-float(idata.sample_stats["lp"].values[0, -1]), rel=1e-8)
