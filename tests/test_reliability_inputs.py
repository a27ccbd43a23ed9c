"""Hostile inputs that gave raw tracebacks (issue 21, item 14): deeply nested TOML, seeds
beyond 64 bits, absurd horizons, one chain, Ctrl-C during a fit."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regimecast.config import load_model_config
from regimecast.diagnostics import Thresholds
from regimecast.errors import ConfigError
from regimecast.priors import load_priors
from regimecast.scenarios import load_scenarios

DEEP = Path(__file__).parent / "fixtures" / "deeply_nested.toml"


@pytest.mark.parametrize("load", [
    load_model_config,
    lambda p: load_scenarios(p, series=("y10",), factors={"policy": ("hike",)}),
    Thresholds.load,
], ids=["model", "scenarios", "thresholds"])
def test_deeply_nested_toml_is_a_file_error(load, tmp_path):
    """3000 nested arrays: RecursionError inside tomllib before."""
    with pytest.raises(ConfigError) as info:
        load(DEEP)
    assert str(DEEP) in str(info.value) and "nested too deeply" in str(info.value)


def test_deeply_nested_prior_file_is_a_file_error(tmp_path, repo_root):
    shutil.copy(DEEP, tmp_path / "deep.toml")
    config = load_model_config(repo_root / "models" / "default.toml")
    with pytest.raises(ConfigError, match=r"deep\.toml.*nested too deeply"):
        load_priors(tmp_path / "deep.toml", config)
