"""Runs under hostile or interrupted conditions (issue 21): manifests that name paths, edited
manifests, empty run references, unquoted reproduce lines, interrupted forecasts and the
leftovers of killed commands. Runs here are synthetic (a tiny posterior), nothing is fitted."""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from pathlib import Path

import arviz as az
import numpy as np
import pytest
from typer.testing import CliRunner

from regimecast import api
from regimecast.workflows import run as run_workflow
from regimecast.store import atomic
from regimecast.store import leftovers
from regimecast.store import runs
from regimecast.workflows.engine import config_from_manifest
from regimecast.errors import Interrupted, RunError
from regimecast.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
RUN_ID = "20261204T000000Z-baseline-00000000"


def _idata():
    return az.from_dict(posterior={"x": np.arange(10.0).reshape(2, 5)})


def _manifest(**extra) -> dict:
    return {"model": {"file": "models/default.toml", "text": "x"}, "seed": 7,
            "sampler": {"seed": 7, "chains": 2, "draws": 5, "tune": 5, "backend": "nutpie"},
            "data": {"dir": "/data", "end": "2013-12"}, "priors": {"file": "priors/baseline.toml"}} | extra


@pytest.fixture()
def run(tmp_path) -> Path:
    return runs.save_run(tmp_path / "runs", RUN_ID, _idata(), _manifest())


def _edit(path: Path, change) -> None:
    m = json.loads((path / runs.MANIFEST).read_text())
    change(m)
    (path / runs.MANIFEST).write_text(json.dumps(m))


def _writer(text: str):
    return lambda p: Path(p).write_text(text)


# item 1 ---------------------------------------------------------------------------------

def test_manifest_source_names_that_climb_out_are_refused(tmp_path, monkeypatch, repo_root):
    m = json.loads((FIXTURES / "manifest_escaping_sources.json").read_text())
    m["model"]["text"] = (repo_root / "models" / "default.toml").read_text()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))        # '../../../escaped.toml' -> tmp_path
    with pytest.raises(RunError) as exc:
        config_from_manifest(m)
    assert "'priors.sources'" in str(exc.value) and "'../../../escaped.toml'" in str(exc.value)
    assert not (tmp_path / "escaped.toml").exists()
    target = tmp_path / "absolute.toml"
    m["priors"]["sources"] = {str(target): "schema_version = 1\n"}
    m["priors"]["chain"] = [str(target)]
    with pytest.raises(RunError, match="'priors.sources'"):
        config_from_manifest(m)
    assert not target.exists()


# item 2 ---------------------------------------------------------------------------------

def test_run_id_with_a_path_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(RunError, match="not a plain directory name"):
        runs.save_run(tmp_path / "runs", "20261204T000000Z-x/../../../../escaped", _idata(), _manifest())
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    assert not (tmp_path.parent.parent / "escaped").exists()          # runs/<id>/../../../../escaped


# item 7 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field, change", [
    ("seed", lambda m: m.update(seed=8)),
    ("model.text", lambda m: m["model"].update(text="y")),
    ("sampler.seed", lambda m: m["sampler"].update(seed=8)),
    ("files.idata.nc", lambda m: m["files"].update({"idata.nc": "0" * 64})),
    ("extra", lambda m: m.update(extra=1)),
])
def test_an_edited_manifest_is_refused_naming_the_field(run, field, change):
    runs.load_run(run)
    _edit(run, change)
    with pytest.raises(RunError) as exc:
        runs.load_manifest(run)
    assert f"field '{field}'" in str(exc.value) and str(run / runs.MANIFEST) in str(exc.value)


def test_an_unsealed_manifest_is_refused_until_sealed(run):
    _edit(run, lambda m: m.pop(runs.INTEGRITY))
    with pytest.raises(RunError, match="field 'integrity' is missing"):
        runs.load_manifest(run)
    assert runs.seal(run)["seed"] == 7
    assert runs.load_manifest(run)["seed"] == 7


# item 8 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ref", ["", "  "])
def test_an_empty_run_reference_is_an_error(run, ref):
    assert runs.resolve_run(run.parent, RUN_ID[:8]) == run             # the only run
    with pytest.raises(RunError, match="empty run reference"):
        runs.resolve_run(run.parent, ref)


# item 9 ---------------------------------------------------------------------------------

def test_reproduce_command_quotes_every_path():
    data = "my data;$(touch x)"
    m = _manifest(data={"dir": data, "end": "2013-12"}, priors={"file": "my priors/a b.toml"})
    lines = api.reproduce_command(runs.Run(Path("r"), m, None)).splitlines()
    fit = shlex.split(lines[0])
    assert fit[fit.index("--data-dir") + 1] == data
    assert fit[fit.index("--priors") + 1] == "my priors/a b.toml"
    assert shlex.split(lines[1]) == ["regimecast", "forecast", "RUN"]


# item 6 ---------------------------------------------------------------------------------

def test_an_interrupted_second_forecast_keeps_the_first(run):
    runs.add_files(run, {"a.nc": _writer("a1"), "b.nc": _writer("b1")}, {"forecast": {"n": 1}})

    def interrupted(p):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs.add_files(run, {"a.nc": _writer("a2"), "b.nc": interrupted}, {"forecast": {"n": 2}})
    m = runs.load_run(run).manifest
    assert m["forecast"] == {"n": 1}
    assert (run / "a.nc").read_text() == "a1" and (run / "b.nc").read_text() == "b1"
    assert sorted(p.name for p in run.iterdir()) == ["a.nc", "b.nc", "idata.nc", "manifest.json"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def _killed_at_commit(monkeypatch, run: Path, files: dict, update: dict) -> None:
    """``add_files`` killed just after its commit (the journal written, nothing moved)."""
    real = runs._complete_pending

    def killed(path):
        if (path / runs.PENDING).is_file():
            raise Killed
        real(path)

    monkeypatch.setattr(runs, "_complete_pending", killed)
    with pytest.raises(Killed):
        runs.add_files(run, files, update)
    monkeypatch.setattr(runs, "_complete_pending", real)


def test_a_kill_after_the_commit_is_completed_by_the_next_reader(run, monkeypatch):
    runs.add_files(run, {"a.nc": _writer("a1"), "b.nc": _writer("b1")}, {"forecast": {"n": 1}})
    _killed_at_commit(monkeypatch, run, {"a.nc": _writer("a2"), "b.nc": _writer("b2")}, {"forecast": {"n": 2}})
    assert (run / runs.PENDING).is_file() and (run / "a.nc").read_text() == "a1"
    assert runs.load_manifest(run)["forecast"] == {"n": 2}
    assert (run / "a.nc").read_text() == "a2" and (run / "b.nc").read_text() == "b2"
    assert not any(p.name.startswith(".") for p in run.iterdir())


def test_an_interrupted_forecast_says_what_it_left(run, monkeypatch):
    from regimecast.cli import app
    from regimecast.simulate.forecast import ForecastSettings

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_workflow, "_forecast", interrupted)
    ws = Workspace.at(run.parent.parent)
    with pytest.raises(Interrupted, match="nothing was written; the run has no forecast"):
        api.forecast(ws, RUN_ID, ForecastSettings(seed=1))
    runs.add_files(run, {"forecast_summary.nc": _writer("s")}, {"forecast": {"n": 1}})
    r = CliRunner().invoke(app, ["--workspace", str(ws.root), "forecast", RUN_ID])
    assert r.exit_code == 130
    assert f"forecast of run {RUN_ID} interrupted: nothing was written; the run's previous forecast stays valid" \
        in r.stderr
    assert runs.load_manifest(run)["forecast"] == {"n": 1}


# item 10 --------------------------------------------------------------------------------

def _age(p: Path, seconds: float = 3600) -> Path:
    t = time.time() - seconds
    os.utime(p, (t, t))
    return p


def test_sweep_removes_stale_leftovers_and_leaves_live_ones(tmp_path):
    stale = tmp_path / ".tmp-r1.abc"
    (stale).mkdir()
    (stale / "idata.nc").write_text("partial")
    _age(stale)
    held, young = tmp_path / ".tmp-r2.def", tmp_path / ".tmp-r3.ghi"
    held.mkdir()
    young.mkdir()
    _age(held)
    aside = tmp_path / ".old-report.jkl"
    (aside / "report").mkdir(parents=True)
    (aside / "report" / "index.html").write_text("old")
    _age(aside)
    with atomic.locked(held):
        done = dict(atomic.sweep(tmp_path))
    assert done[stale].startswith("removed") and not stale.exists()
    assert "another command is writing it" in done[held] and held.exists()
    assert "seconds ago" in done[young] and young.exists()
    assert done[aside] == "restored report and removed the rest"
    assert (tmp_path / "report" / "index.html").read_text() == "old" and not aside.exists()


def test_the_next_command_reports_and_cleans_leftovers(run, monkeypatch):
    from regimecast.cli import app

    ws_root = run.parent.parent
    stale = _age(Path(tempfile.mkdtemp(prefix=".tmp-20261204T111111Z-baseline-1.", dir=run.parent)))
    staged = _age(Path(tempfile.mkdtemp(prefix=".tmp-files.", dir=run)))
    r = CliRunner().invoke(app, ["--workspace", str(ws_root), "report", "nosuchrun"])
    assert r.exit_code == 1 and "no matching run" in r.stderr
    assert f"note: runs/{stale.name}: removed (left by an interrupted write)" in r.stderr
    assert f"note: runs/{RUN_ID}/{staged.name}: removed (left by an interrupted write)" in r.stderr
    assert not stale.exists() and not staged.exists()
    runs.load_run(run)


def test_sweep_completes_a_committed_forecast(run, monkeypatch):
    _killed_at_commit(monkeypatch, run, {"a.nc": _writer("a")}, {"forecast": {"n": 1}})
    notes = leftovers.sweep(Workspace.at(run.parent.parent))
    assert notes == [f"runs/{RUN_ID}/{runs.PENDING}: completed the interrupted update of the run"]
    assert runs.load_manifest(run)["forecast"] == {"n": 1}
