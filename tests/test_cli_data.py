"""``regimecast data show|pull`` through typer's CliRunner, mounted on a tiny root app."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from regimecast.cli.data import app as data_app
from regimecast.store.workspace import DATA_DIR_ENV, Workspace

from test_data_fred import FakeFred

ENV = {"COLUMNS": "220", DATA_DIR_ENV: None}


def _root(ws: Workspace) -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = {"workspace": ws}

    root.add_typer(data_app, name="data")
    return root


@pytest.fixture
def ws(tmp_path: Path, repo_root: Path) -> Workspace:
    (tmp_path / "models").mkdir()
    shutil.copy(repo_root / "models" / "default.toml", tmp_path / "models" / "default.toml")
    return Workspace.at(tmp_path)


def _run(ws: Workspace, *args: str, env: dict | None = None):
    return CliRunner().invoke(_root(ws), ["data", *args], env={**ENV, **(env or {})})


def test_show_real_data(ws: Workspace, fred_dir: Path) -> None:
    r = _run(ws, "show", "--data-dir", str(fred_dir))
    assert r.exit_code == 0, r.output
    assert "common sample 2003-01 .. 2026-07, 283 months" in r.stdout
    for text in ("DGS10", "GOLD_LBMA_PM_USD", "SOFR-IORB", "1 (2025-10)",
                 "222 (2003-01..2021-06)", "percent year on year"):
        assert text in r.stdout
    assert "DGS10 2026-08" in r.stdout  # incomplete trailing month reported


def test_show_end_and_env_data_dir(ws: Workspace, fred_dir: Path) -> None:
    r = _run(ws, "show", "--end", "2020-12", env={DATA_DIR_ENV: str(fred_dir)})
    assert r.exit_code == 0, r.output
    assert "common sample 2003-01 .. 2020-12, 216 months" in r.stdout


def test_show_without_ctx_obj_uses_cwd(ws: Workspace, fred_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(ws.root)
    r = CliRunner().invoke(data_app, ["show", "--data-dir", str(fred_dir)], env=ENV)
    assert r.exit_code == 0, r.output
    assert "283 months" in r.stdout


def test_show_missing_data_is_an_error(ws: Workspace) -> None:
    r = _run(ws, "show")  # workspace cache data/ does not exist
    assert r.exit_code == 1
    assert str(ws.cache / "DGS10.csv") in r.stderr and "regimecast data pull" in r.stderr
    assert "Traceback" not in r.output


def test_show_bad_model(ws: Workspace, fred_dir: Path) -> None:
    bad = ws.models / "bad.toml"
    bad.write_text((ws.models / "default.toml").read_text().replace(
        'transform = "diff"', 'transform = "difference"', 1))
    r = _run(ws, "show", "--model", "bad", "--data-dir", str(fred_dir))
    assert r.exit_code == 1
    assert str(bad) in r.stderr and "series[0].transform" in r.stderr and "'difference'" in r.stderr


def test_show_bad_end(ws: Workspace, fred_dir: Path) -> None:
    r = _run(ws, "show", "--end", "2030-01", "--data-dir", str(fred_dir))
    assert r.exit_code == 1 and "after the common end 2026-07" in r.stderr


@pytest.fixture
def fred(fred_dir: Path):
    fake = FakeFred(fred_dir)
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    thread.join(5)


def test_pull_series(ws: Workspace, fred: FakeFred, fred_dir: Path) -> None:
    r = _run(ws, "pull", "--series", "FEDFUNDS", "--series", "IORB", "--base-url", fred.url)
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("FEDFUNDS") and " ok " in lines[0]
    for sid in ("FEDFUNDS", "IORB"):
        assert (ws.cache / f"{sid}.csv").read_bytes() == (fred_dir / f"{sid}.csv").read_bytes()


def test_pull_default_ids(ws: Workspace, fred: FakeFred, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    r = _run(ws, "pull", "--base-url", fred.url, "--data-dir", str(out))
    assert r.exit_code == 0, r.output
    assert fred.requests == ["DGS10", "NASDAQCOM", "VIXCLS", "FEDFUNDS", "WALCL", "CPIAUCSL",
                             "SOFR", "IORB"]
    assert len(r.stdout.strip().splitlines()) == 8 and (out / "IORB.csv").is_file()


def test_pull_file_source_series(ws: Workspace, fred: FakeFred) -> None:
    r = _run(ws, "pull", "--series", "GOLD_LBMA_PM_USD", "--base-url", fred.url)
    assert r.exit_code == 1
    assert "GOLD_LBMA_PM_USD" in r.stderr and "place GOLD_LBMA_PM_USD.csv" in r.stderr
    assert fred.requests == []


def test_pull_server_error(ws: Workspace, fred: FakeFred) -> None:
    fred.mode = "500"
    r = _run(ws, "pull", "--series", "FEDFUNDS", "--base-url", fred.url, "--retries", "0")
    assert r.exit_code == 1
    assert "FEDFUNDS" in r.stderr and "HTTP 500" in r.stderr and "1 attempt" in r.stderr
    assert not (ws.cache / "FEDFUNDS.csv").exists()


@pytest.mark.parametrize("bad", ["../x", "/tmp/regimecast-escape/x", "DGS10\n", "a.b"])
def test_pull_refuses_a_series_id_that_is_a_path(ws: Workspace, fred: FakeFred, tmp_path: Path,
                                                 bad: str) -> None:
    """issue 21 item 4: an id becomes <ID>.csv: a path would write outside the data folder."""
    r = _run(ws, "pull", "--series", "FEDFUNDS", "--series", bad, "--base-url", fred.url)
    assert r.exit_code == 1
    assert repr(bad) in r.stderr and "not a FRED id" in r.stderr
    assert fred.requests == []                      # refused before any download
    assert not ws.cache.exists() or list(ws.cache.iterdir()) == []
    assert not (tmp_path / "x.csv").exists() and not Path("/tmp/regimecast-escape").exists()


def _data_copy(fred_dir: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(fred_dir, data)
    return data


def test_show_refuses_a_units_change_inside_a_file(ws: Workspace, fred_dir: Path, tmp_path: Path) -> None:
    """issue 21 item 11 through the CLI: DGS10 in decimals from 2024 on no longer passes."""
    from test_data_csv import _dgs10_with_decimal_tail

    data = _data_copy(fred_dir, tmp_path)
    (data / "DGS10.csv").chmod(0o644)
    _dgs10_with_decimal_tail(fred_dir, data)
    r = _run(ws, "show", "--data-dir", str(data))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert str(data / "DGS10.csv") in r.stderr and "units change inside the file" in r.stderr
    assert "value '0.0395'" in r.stderr


def test_show_refuses_a_link_to_a_foreign_file(ws: Workspace, fred_dir: Path, tmp_path: Path) -> None:
    """issue 21 item 5 through the CLI: exit 1, the link named, nothing of the target printed."""
    data = _data_copy(fred_dir, tmp_path)
    (data / "VIXCLS.csv").unlink()
    (data / "VIXCLS.csv").symlink_to(Path(__file__).parent / "fixtures" / "data" / "foreign_secret.txt")
    r = _run(ws, "show", "--data-dir", str(data))
    assert r.exit_code == 1
    assert str(data / "VIXCLS.csv") in r.stderr and "symbolic link" in r.stderr
    assert "SECRET" not in r.output and "root:x" not in r.output
