"""Shared fixtures. Real data is read from ../shared/data/fred beside the repository
(override with REGIMECAST_SHARED_DIR); it is never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    env = os.environ.get("REGIMECAST_SHARED_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def fred_dir() -> Path:
    """The directory of real FRED-format CSVs (one file per series)."""
    d = shared_dir() / "data" / "fred"
    if not d.is_dir():
        pytest.fail(f"real data directory {d} is missing: CI must run with ../shared beside the repo")
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def model_bundle(fred_dir):
    """The default model on the real panel (built once per session; nothing sampled)."""
    from regimecast.config.model_file import load_model_config
    from regimecast.data.panel import build_panel
    from regimecast.workflows.engine import RegimeModel
    from regimecast.config.priors import load_priors

    config = load_model_config(REPO_ROOT / "models" / "default.toml")
    priors = load_priors(REPO_ROOT / "priors" / "baseline.toml", config)
    panel = build_panel(config.series, config.sample, fred_dir)
    return RegimeModel(config, priors, panel)


TINY = dict(chains=2, draws=30, tune=30, map_restarts=2, map_maxiter=200)   # plumbing, not convergence
END = "2013-12"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A scratch workspace with the repository's models/ and priors/."""
    import shutil

    from regimecast.store.workspace import Workspace

    root = tmp_path_factory.mktemp("ws")
    shutil.copytree(REPO_ROOT / "models", root / "models")
    shutil.copytree(REPO_ROOT / "priors", root / "priors")
    return Workspace.at(root)


@pytest.fixture(scope="session")
def tiny_fit(workspace, fred_dir):
    """A real fit with tiny sampler settings on the panel to 2013-12: (run dir, FitResult)."""
    from regimecast import api
    from regimecast.fit.sampler import SamplerSettings

    return api.fit(workspace, SamplerSettings(seed=7, **TINY), data_dir=fred_dir, end=END, progressbar=False)


def prior_folder(tmp_path: Path, fixtures: Path) -> Path:
    """``tmp_path`` holding the baseline prior set and every prior file of ``fixtures``."""
    import shutil

    shutil.copy(REPO_ROOT / "priors" / "baseline.toml", tmp_path / "baseline.toml")
    for f in fixtures.glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path
