"""Hostile inputs that gave raw tracebacks (issue 21, item 14): deeply nested TOML, seeds
beyond 64 bits, absurd horizons, one chain, Ctrl-C during a fit."""

from __future__ import annotations

import shutil
import signal
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regimecast.config.model_file import load_model_config
from regimecast.config.thresholds import Thresholds
from regimecast.errors import ConfigError
from regimecast.config.priors import load_priors
from regimecast.scenarios.sets import load_scenarios

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


# ---- the CLI refuses at once what would fail late, and says what an interrupt left --------------
def _cli(workspace, *args: str):
    from regimecast.cli import app

    return CliRunner().invoke(app, ["--workspace", str(workspace.root), *args], env={"COLUMNS": "200"})


@pytest.mark.parametrize(("args", "words"), [
    (["fit", "--chains", "1"], "chains = 1: at least 2 chains are needed"),
    (["fit", "--seed", str(2**64)], f"seed = {2**64}: expected an integer from 0 to 2**63 - 1"),
    (["forecast", "--seed", str(2**64)], f"seed = {2**64}: expected an integer"),
    (["forecast", "--horizon", "100000"], "horizon = 100000: at most 600 months"),
])
def test_settings_that_fail_late_are_refused_at_once(workspace, tmp_path, args, words):
    """Before: one chain failed after minutes of sampling, a 2^64 seed was an OverflowError,
    --horizon 100000 a pandas timestamp error; now each is refused before reading any data
    (the data folder given does not even exist)."""
    r = _cli(workspace, *args, "--data-dir", str(tmp_path / "nothing-here"))
    assert r.exit_code == 1 and words in r.stderr, r.output
    assert "Traceback" not in r.output


def _nutpie_interrupted(*args, **kwargs):
    """What nutpie does on Ctrl-C: returns partial results, on which the fit then fails."""
    try:
        signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        pass
    raise IndexError("index 0 is out of bounds for axis 0 with size 0")


def _plain_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("fit", [_nutpie_interrupted, _plain_interrupt], ids=["nutpie", "plain"])
def test_ctrl_c_during_a_fit_says_what_was_left(workspace, fred_dir, monkeypatch, fit):
    from regimecast.workflows.engine import RegimeModel

    monkeypatch.setattr(RegimeModel, "fit", fit)
    before = sorted(workspace.runs.iterdir()) if workspace.runs.exists() else []
    # Python's own handler, or SIG_IGN when the tests were started in the background (nohup, &)
    handler = signal.getsignal(signal.SIGINT)
    r = _cli(workspace, "fit", "--data-dir", str(fred_dir), "--end", "2013-12")
    assert r.exit_code == 130, r.output
    assert "fit interrupted (Ctrl-C) while sampling: no run was written" in r.stderr
    assert "IndexError" not in r.output and "Traceback" not in r.output
    assert (sorted(workspace.runs.iterdir()) if workspace.runs.exists() else []) == before
    assert signal.getsignal(signal.SIGINT) is handler                         # handler restored


def test_nesting_depth_ignores_strings_and_comments():
    """The depth check counts brackets in values only, so it does not depend on the stack
    depth tomllib happens to have left (the 3000-level file parsed after other tests had run)."""
    from regimecast.store.tomlfile import MAX_DEPTH, loads, nesting_depth

    text = 'a = "[[[[" # [[[[\nb = [[1, [2]], {c = [3]}]\nd = \'\'\'[[[\n{{\'\'\'\ne = "x\\"[["\n[t]\n'
    assert nesting_depth(text) == 3
    assert loads(text)["b"] == [[1, [2]], {"c": [3]}]
    ok = "a = " + "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert nesting_depth(ok) == MAX_DEPTH and loads(ok)["a"]
    with pytest.raises(tomllib.TOMLDecodeError, match="nested too deeply"):
        loads("a = " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
