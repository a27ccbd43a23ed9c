"""Model configuration: the shipped file loads; broken files name file, key and value."""

from __future__ import annotations

import pandas as pd
import pytest

from regimecast.config.model_file import load_model_config
from regimecast.errors import ConfigError


def test_default_model_loads(repo_root):
    cfg = load_model_config(repo_root / "models" / "default.toml")
    assert cfg.observed == ("y10", "equity", "gold", "vix", "fedfunds", "balance_sheet", "inflation")
    assert cfg.assets == ("y10", "equity", "gold", "vix")
    assert [f.name for f in cfg.factors] == ["policy", "ai", "backlash"] and cfg.joint_shape == (8, 2, 2)
    assert {"hike", "hold", "cut_qt", "qe"} <= set(cfg.factor("policy").states)
    assert [c.name for c in cfg.covariates] == ["drawdown", "vix", "inflation", "liquidity"]
    labels = cfg.history_labels(pd.date_range("2008-10-01", "2008-12-01", freq="MS"))
    assert list(labels) == ["cut", "qe", "qe"]          # QE from 2008-11 wins over the cut episode
    assert cfg.history_labels(pd.DatetimeIndex(["2024-10-01"]))[0] == "cut_qt"
    assert cfg.history_agrees == {"crisis": ("cut", "qe"), "hike_qt": ("hike",)}
    assert cfg.history_default == "hold" and cfg.history_labels(pd.DatetimeIndex(["2003-01-01"]))[0] == "hold"
    assert cfg.rate_assets == ("y10",)


def test_history_default_from_the_model_file(repo_root, tmp_path):
    """``[history] default`` names the state of months in no episode (``hold`` when absent)."""
    text = (repo_root / "models" / "default.toml").read_text()
    p = tmp_path / "m.toml"
    p.write_text(text.replace("[history]\n", '[history]\ndefault = "qt"\n'))
    cfg = load_model_config(p)
    assert cfg.history_default == "qt" and cfg.history_labels(pd.DatetimeIndex(["2003-01-01"]))[0] == "qt"


@pytest.mark.parametrize("old, new, key, value", [
    ('family = "student_t"', 'family = "cauchy"', "emission.family", "cauchy"),
    ('ar_series = ["vix", "inflation"]', 'ar_series = ["vix", "oil"]', "emission.ar_series[1]", "oil"),
    ('scale = 0.5\n', 'scale = -0.5\n', "transition.covariates.vix.scale", -0.5),
    ('states = ["low", "high"]', 'states = ["low"]', "factors[2].states", ["low"]),
    ('{ state = "qt",     start = "2019-01", end = "2019-07" }',
     '{ state = "taper",  start = "2019-01", end = "2019-07" }', "history.episodes[6].state", "taper"),
    ('source = "equity"', 'source = "bitcoin"', "transition.covariates.drawdown.source", "bitcoin"),
    ('schema_version = 1', 'schema_version = 2', "schema_version", 2),
    ('agrees = { crisis = ["cut", "qe"]', 'agrees = { crisis = ["cut", "taper"]', "history.agrees.crisis[1]", "taper"),
    ('agrees = { crisis = ["cut", "qe"]', 'agrees = { panic = ["cut"]', "history.agrees.panic", "panic"),
    ('[history]\n', '[history]\ndefault = "taper"\n', "history.default", "taper"),
])
def test_broken_model_files(repo_root, tmp_path, old, new, key, value):
    text = (repo_root / "models" / "default.toml").read_text()
    assert old in text
    p = tmp_path / "broken.toml"
    p.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_model_config(p)
    assert exc.value.key == key and exc.value.value == value
    assert "broken.toml" in str(exc.value) and key in str(exc.value)


def test_unknown_top_level_key(repo_root, tmp_path):
    p = tmp_path / "m.toml"
    p.write_text((repo_root / "models" / "default.toml").read_text() + "\nextra = 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_model_config(p)
