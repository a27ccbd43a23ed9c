"""The hostile-input and interrupted-work catalogue (issue 21): each case is data (a file under
tests/fixtures/hostile/ or an edit of a real file), run through the command line where it can
be, and asserts the concrete behaviour: the exit code, a message naming the file, field and
value, no traceback, and nothing written (or the old state intact). Every case id is listed in
the README's Reliability table (``test_every_case_is_in_the_readme``). Nothing here is fitted."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import arviz as az
import numpy as np
import pytest
from typer.testing import CliRunner

from regimecast.store import runs
from regimecast.cli import app
from regimecast.errors import ConfigError, RunError
from regimecast.scenarios.sets import load_scenarios

REPO = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
BIG = str(2**64)
RUN_ID = "20261204T000000Z-baseline-0000abcd"


# ---- helpers ---------------------------------------------------------------------------------
def _workspace(root: Path) -> Path:
    shutil.copytree(REPO / "models", root / "models")
    shutil.copytree(REPO / "priors", root / "priors")
    return root


def _cli(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args], env={"COLUMNS": "200"})


def _refused(r, words, code: int = 1) -> None:
    """Exit ``code``, every word in the error message, no traceback."""
    assert r.exit_code == code, r.output
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---- data files: `regimecast data show` on a copy of the real data with one file made hostile ----
def _rows(edit):
    """An edit of a file's text lines (header = line 0), as bytes -> bytes."""
    def apply(data: bytes) -> bytes:
        lines = data.decode().replace("\r\n", "\n").split("\n")      # FRED serves CRLF
        lines = edit(lines[:-1] if lines[-1] == "" else lines)
        return ("\n".join(lines) + "\n").encode()
    return apply


def _value(i: int, v: str):
    return _rows(lambda ls: ls[:i] + [f"{ls[i].split(',')[0]},{v}"] + ls[i + 1:])


def _date(i: int, d: str):
    return _rows(lambda ls: ls[:i] + [f"{d},{ls[i].split(',')[1]}"] + ls[i + 1:])


def _fixture(name: str):
    return lambda data: (HOSTILE / "data" / name).read_bytes()


def _scaled(factor: float):
    def edit(ls):
        return [ls[0]] + [ln if ln.split(",")[1] in ("", ".") else f"{ln.split(',')[0]},{float(ln.split(',')[1]) * factor:.6g}"
                          for ln in ls[1:]]
    return _rows(edit)


DELETE = object()   # the file is removed
MKDIR = object()    # the file is replaced by a folder of that name

# id, file, edit, exit code, words of the message ("{f}": the file's path)
DATA_CASES = [
    ("bom", "DGS10", lambda b: b"\xef\xbb\xbf" + b, 0, ["common sample"]),
    ("lf_line_endings", "DGS10", lambda b: b.replace(b"\r\n", b"\n"), 0, ["common sample"]),
    ("mixed_line_endings", "DGS10", lambda b: b[: len(b) // 2].replace(b"\r\n", b"\n") + b[len(b) // 2:], 0,
     ["common sample"]),
    ("cr_only_line_endings", "DGS10", lambda b: b.replace(b"\r\n", b"\r"), 1,
     ["{f}, line 1", "a FRED row (date,value) is at most 200"]),
    ("dot_missing_values", "DGS10", _value(100, "."), 0, ["common sample"]),
    ("empty_missing_values", "DGS10", _value(100, ""), 0, ["common sample"]),
    ("spaces_around_fields", "DGS10", _rows(lambda ls: ls[:100] + [" " + ls[100].replace(",", " , ") + " "] + ls[101:]),
     0, ["common sample"]),
    ("duplicated_date", "DGS10", _rows(lambda ls: ls[:101] + [ls[100]] + ls[101:]), 1,
     ["{f}, line 102", "'observation_date'", "duplicated date"]),
    ("unsorted_dates", "DGS10", _rows(lambda ls: ls[:100] + [ls[101], ls[100]] + ls[102:]), 1,
     ["{f}, line 102", "dates are not sorted"]),
    ("header_only", "DGS10", _fixture("header_only.csv"), 1, ["{f}", "no observations after the header"]),
    ("empty_file", "DGS10", _fixture("empty.csv"), 1, ["{f}", "field 'header'", "empty file"]),
    ("wrong_value_column", "DGS10", _rows(lambda ls: ["observation_date,GS10"] + ls[1:]), 1,
     ["{f}, line 1", "'observation_date,GS10'", "does not match the series DGS10"]),
    ("wrong_date_column", "DGS10", _rows(lambda ls: ["date,DGS10"] + ls[1:]), 1,
     ["{f}, line 1", "'date,DGS10'", "wrong header"]),
    ("semicolon_separated", "DGS10", _fixture("semicolons.csv"), 1, ["{f}, line 1", "wrong header"]),
    ("html_error_page", "DGS10", _fixture("html_page.csv"), 1, ["{f}, line 1", "wrong header"]),
    ("binary_file", "DGS10", _fixture("binary.csv"), 1, ["{f}", "not UTF-8"]),
    ("quoted_values", "DGS10", _fixture("quoted_values.csv"), 1, ["{f}, line 2", "'\"4.06\"'", "non-numeric value"]),
    ("three_fields", "DGS10", _value(100, "4.06,x"), 1, ["{f}, line 101", "expected 2 comma-separated fields"]),
    ("decimal_comma", "DGS10", _value(100, "4,06"), 1, ["{f}, line 101", "found 3"]),
    ("blank_line_inside", "DGS10", _rows(lambda ls: ls[:100] + [""] + ls[100:]), 1,
     ["{f}, line 101", "found 1"]),
    ("nan_literal", "DGS10", _value(100, "NaN"), 1, ["{f}, line 101", "field 'DGS10' value 'NaN'", "non-numeric"]),
    ("inf_literal", "DGS10", _value(100, "inf"), 1, ["{f}, line 101", "value 'inf'", "non-numeric"]),
    ("text_value", "DGS10", _value(100, "n/a"), 1, ["{f}, line 101", "value 'n/a'", "non-numeric"]),
    ("us_date_format", "DGS10", _date(100, "05/29/1962"), 1, ["{f}, line 101", "'05/29/1962'", "YYYY-MM-DD"]),
    ("impossible_date", "DGS10", _date(100, "1962-02-30"), 1, ["{f}, line 101", "'1962-02-30'", "unparseable date"]),
    ("date_in_the_future", "DGS10", _rows(lambda ls: ls + ["2099-01-05,4.00"]), 1,
     ["{f}", "'2099-01-05'", "date is in the future"]),
    ("negative_price_under_log", "NASDAQCOM", _value(100, "-5.0"), 1,
     ["{f}, line 101", "value '-5.0'", "non-positive value where the 'log_diff_pct' transform takes a log"]),
    ("zero_price_under_log", "VIXCLS", _value(100, "0"), 1,
     ["{f}, line 101", "value '0'", "non-positive value where the 'log' transform takes a log"]),
    ("rates_in_decimals", "DGS10", _scaled(0.01), 1, ["{f}", "looks like a decimal fraction, not percent"]),
    ("latin1_byte", "DGS10", lambda b: b.replace(b"observation_date", "observation_dät".encode("latin-1")), 1,
     ["{f}", "not UTF-8"]),
    ("file_missing", "DGS10", DELETE, 1, ["{f}", "place the file there"]),
    ("folder_instead_of_file", "DGS10", MKDIR, 1, ["{f}", "place the file there"]),
    ("stale_download", "DGS10", _rows(lambda ls: [ls[0]] + [ln for ln in ls[1:] if ln < "2015"]), 1, ["DGS10", "2014-12"]),
    ("all_values_missing", "DGS10", _rows(lambda ls: [ls[0]] + [f"{ln.split(',')[0]},." for ln in ls[1:]]), 1,
     ["DGS10"]),
]


@pytest.fixture(scope="module")
def data_copy_source(fred_dir, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fred") / "fred"
    shutil.copytree(fred_dir, d)
    return d


@pytest.mark.parametrize(("case", "sid", "edit", "code", "words"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_hostile_data_file(tmp_path, data_copy_source, case, sid, edit, code, words):
    data = tmp_path / "data"
    shutil.copytree(data_copy_source, data)
    f = data / f"{sid}.csv"
    if edit is DELETE:
        f.unlink()
    elif edit is MKDIR:
        f.unlink()
        f.mkdir()
    else:
        f.write_bytes(edit(f.read_bytes()))
    before = _tree(data)
    root = _workspace(tmp_path / "ws")
    r = _cli(root, "data", "show", "--data-dir", str(data))
    if code == 0:
        assert r.exit_code == 0 and all(w in r.stdout for w in words), r.output
    else:
        _refused(r, [w.replace("{f}", str(f)) for w in words], code)
    assert _tree(data) == before and not (root / "runs").exists()


def test_data_folders_that_are_not_folders(tmp_path):
    """--data-dir naming nothing, or a file: an error naming the folder, nothing made."""
    root = _workspace(tmp_path / "ws")
    for d in (tmp_path / "no-such-folder", REPO / "README.md"):
        r = _cli(root, "data", "show", "--data-dir", str(d))
        _refused(r, [str(d)])
    assert not (tmp_path / "no-such-folder").exists()


# ---- model files: `regimecast data show --model FILE` with one edit of models/default.toml ----
MODEL_CASES = [
    ("toml_syntax_error", ("[sample]", "[sample"), ["'<file>'", "not valid TOML"]),
    ("unknown_top_level_key", ('name = "default"', 'name = "default"\ncolour = "red"'), ["'colour'", "unknown key"]),
    ("schema_version_2", ("schema_version = 1", "schema_version = 2"), ["'schema_version' = 2"]),
    ("duplicate_series_name", ('name = "equity"', 'name = "y10"'), ["'y10'"]),
    ("unknown_transform", ('transform = "diff"', 'transform = "sqrt"'), ["transform", "'sqrt'"]),
    ("unknown_aggregation", ('aggregation = "last"           #', 'aggregation = "median"           #'),
     ["aggregation", "'median'"]),
    ("unknown_kind", ('kind = "percent_rate"', 'kind = "ratio"'), ["kind", "'ratio'"]),
    ("fred_id_is_a_path", ('fred_id = "DGS10"', 'fred_id = "../../etc/passwd"'), ["fred_id", "'../../etc/passwd'"]),
    ("negative_measurement_sd", ("measurement_sd = 0.0041", "measurement_sd = -0.0041"), ["measurement_sd", "-0.0041"]),
    ("bad_start_month", ('start = "2003-01"', 'start = "2003-13"'), ["sample.start", "'2003-13'"]),
    ("min_months_zero", ("min_months = 84", "min_months = 0"), ["sample.min_months", "0"]),
    ("unknown_transition_factor", ('homogeneous Markov chains.\nfactor = "policy"', 'homogeneous Markov chains.\nfactor = "weather"'),
     ["transition.factor", "'weather'"]),
    ("unknown_covariance_factor", ('covariance_factor = "policy"', 'covariance_factor = "weather"'),
     ["emission.covariance_factor", "'weather'"]),
    ("covariate_of_unknown_series", ('source = "equity"', 'source = "bitcoin"'), ["'bitcoin'"]),
    ("duplicate_factor_state", ('states = ["delayed", "realised"]', 'states = ["delayed", "delayed"]'),
     ["'delayed'"]),
    ("one_state_factor", ('states = ["low", "high"]', 'states = ["low"]'), ["factors[2].states", "['low']"]),
    ("unknown_ar_series", ('ar_series = ["vix", "inflation"]', 'ar_series = ["vix", "bitcoin"]'),
     ["emission.ar_series", "'bitcoin'"]),
    ("history_state_unknown", ('{ state = "hike",   start = "2004-06"', '{ state = "taper",   start = "2004-06"'),
     ["'taper'"]),
]


@pytest.mark.parametrize(("case", "edit", "words"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_hostile_model_file(tmp_path, fred_dir, case, edit, words):
    root = _workspace(tmp_path)
    text = (root / "models" / "default.toml").read_text()
    assert text.count(edit[0]) >= 1, edit[0]
    f = root / "models" / "hostile.toml"
    f.write_text(text.replace(edit[0], edit[1], 1))
    r = _cli(root, "data", "show", "--model", str(f), "--data-dir", str(fred_dir))
    _refused(r, [str(f), *words])


def test_a_model_file_that_is_not_there(tmp_path, fred_dir):
    root = _workspace(tmp_path)
    r = _cli(root, "data", "show", "--model", "nope", "--data-dir", str(fred_dir))
    _refused(r, [str(root / "models" / "nope.toml")])


# ---- prior files: `regimecast priors check NAME` -------------------------------------------------
PRIOR_CASES = [
    ("cycle_a", ["'extends' = 'cycle_a'", "circular extends: cycle_a.toml -> cycle_b.toml"]),
    ("self_loop", ["'extends' = 'self_loop'", "circular extends"]),
    ("missing_parent", ["'extends' = 'no_such_parent'", "no prior file"]),
    ("syntax_error", ["'<file>'", "not valid TOML", "line 4"]),
    ("duplicate_key", ["'<file>'", "not valid TOML", "line 6"]),
    ("empty", ["'schema_version' = None"]),
    ("string_schema", ["'schema_version' = '1'"]),
    ("zero_sigma", ["'transition.switch.default.sigma' = 0.0", "sigma must be positive"]),
    ("string_sigma", ["'transition.switch.default.sigma' = 'wide'", "expected a finite number"]),
    ("bool_sigma", ["'transition.switch.default.sigma' = True", "expected a finite number"]),
    ("nan_mu", ["'transition.switch.default.mu' = nan", "expected a finite number"]),
    ("inf_sigma", ["'transition.switch.default.sigma' = inf", "expected a finite number"]),
    ("extra_param", ["'transition.switch.default.nu' = 3.0", "unknown parameter of Normal"]),
    ("array_param", ["'transition.switch.default' = [-4.0, 1.5]", "expected a table of Normal parameters"]),
    ("negative_dirichlet", ["'transition.ai.delayed.realised' = -1.0", "concentration must be positive"]),
    ("dirichlet_unknown_state", ["'transition.ai.delayed.imminent' = 1.0", "unknown state"]),
    ("unknown_factor", ["'transition.weather'", "unknown key"]),
    ("unknown_block", ["'likelihood'", "unknown key"]),
    ("name_with_space", ["'name' = 'my priors'", "run ids and paths"]),
]


@pytest.fixture()
def prior_ws(tmp_path) -> Path:
    root = _workspace(tmp_path)
    for f in (HOSTILE / "priors").glob("*.toml"):
        shutil.copy(f, root / "priors" / f.name)
    return root


@pytest.mark.parametrize(("case", "words"), PRIOR_CASES, ids=[c[0] for c in PRIOR_CASES])
def test_hostile_prior_file(prior_ws, case, words):
    before = _tree(prior_ws)
    r = _cli(prior_ws, "priors", "check", case)
    _refused(r, [str(prior_ws / "priors" / f"{case}.toml"), *words])
    assert _tree(prior_ws) == before


def test_a_child_prior_may_override_one_parameter(prior_ws):
    """``default = { mu = -3.0 }`` in a child: sigma comes from the parent (merged per parameter)."""
    r = _cli(prior_ws, "priors", "check", "missing_sigma")
    assert r.exit_code == 0 and "valid" in r.stdout and "-3" in r.stdout, r.output


# ---- scenario files ------------------------------------------------------------------------------
SCENARIO_CASES = [
    ("unknown_series", "scenario.s1.predicate", "unknown series"),
    ("unknown_state", "scenario.s1.predicate", "unknown state of factor 'policy'"),
    ("beyond_horizon", "scenario.s1.predicate", "horizon 36 exceeds the scenario horizon 12"),
    ("beyond_max_horizon", "scenario.s1.horizon", "at most 600 months"),
    ("policy_horizon_beyond_max", "policy.horizons", "<= 600"),
    ("negative_horizon", "scenario.s1.horizon", "horizon must be >= 1"),
    ("predicate_syntax_error", "scenario.s1.predicate", "expected ')'"),
    ("toml_syntax_error", "<file>", "cannot read scenario file"),
    ("duplicate_names", "scenario[1].name", "names are unique identifiers"),
    ("name_is_a_path", "scenario[0].name", "'../../etc/x'"),
    ("missing_predicate", "scenario[0].predicate", "required key is missing"),
    ("predicate_not_text", "scenario[0].predicate", "expected a string"),
    ("empty_predicate", "scenario.s1.predicate", "end of predicate"),
    ("python_code", "scenario.s1.predicate", "unexpected character"),
    ("not_utf8", "<file>", "cannot read scenario file"),
    ("empty", "schema_version", "required key is missing"),
]


@pytest.mark.parametrize(("case", "key", "words"), SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_hostile_scenario_file(tmp_path, monkeypatch, case, key, words):
    monkeypatch.chdir(tmp_path)                       # python_code: nothing may appear here
    f = HOSTILE / "scenarios" / f"{case}.toml"
    with pytest.raises(ConfigError) as info:
        load_scenarios(f, series=("y10", "equity"), factors={"policy": ("hike", "hold", "cut", "qe")})
    assert info.value.file == str(f) and info.value.key == key and words in str(info.value), str(info.value)
    assert list(tmp_path.iterdir()) == []


# ---- command-line settings: refused before any data is read (the data folder does not exist) ----
CLI_CASES = [
    ("fit_draws_zero", ["fit", "--draws", "0"], "draws = 0: must be at least 1"),
    ("fit_draws_negative", ["fit", "--draws", "-5"], "draws = -5: must be at least 1"),
    ("fit_tune_negative", ["fit", "--tune", "-1"], "tune = -1: must be at least 1"),
    ("fit_chains_zero", ["fit", "--chains", "0"], "chains = 0"),
    ("fit_seed_negative", ["fit", "--seed", "-1"], "seed = -1: expected an integer from 0 to 2**63 - 1"),
    ("fit_unknown_backend", ["fit", "--backend", "stan"], "sampler backend 'stan': must be one of numpyro, nutpie"),
    ("fit_unknown_mass_matrix", ["fit", "--mass-matrix", "full"], "mass_matrix 'full'"),
    ("fit_unknown_init", ["fit", "--init", "random"], "sampler init 'random'"),
    ("fit_prior_set_missing", ["fit", "--priors", "nope"], "nope.toml"),
    ("forecast_paths_zero", ["forecast", "--paths", "0"], "paths = 0: must be at least 1"),
    ("forecast_horizon_zero", ["forecast", "--horizon", "0"], "horizon = 0: must be at least 1"),
    ("forecast_horizon_negative", ["forecast", "--horizon", "-3"], "horizon = -3: must be at least 1"),
    ("forecast_max_draws_zero", ["forecast", "--max-draws", "0"], "max_draws = 0: must be at least 1"),
    ("forecast_seed_negative", ["forecast", "--seed", "-7"], "seed = -7"),
    ("forecast_unknown_run", ["forecast", "20991231T000000Z-nope"], "run '20991231T000000Z-nope': no matching run(s)"),
    ("forecast_latest_without_runs", ["forecast", "latest"], "no complete run in"),
    ("report_unknown_run", ["report", "nope"], "run 'nope': no matching run(s)"),
    ("report_latest_without_runs", ["report"], "no complete run in"),
    ("update_unknown_run", ["update", "nope"], "run 'nope': no matching run(s)"),
    ("diagnose_unknown_run", ["diagnose", "nope"], "nope"),
    # issue 21's gaps: compare, update, backtest and run refuse what only fit/forecast refused
    ("compare_one_chain", ["compare", "baseline", "baseline", "--chains", "1"], "chains = 1: at least 2 chains"),
    ("compare_seed_beyond_2_63", ["compare", "baseline", "--seed", BIG], f"seed = {BIG}: expected an integer"),
    ("backtest_one_chain", ["backtest", "--start", "2012-01", "--chains", "1"], "chains = 1: at least 2 chains"),
    ("backtest_seed_beyond_2_63", ["backtest", "--start", "2012-01", "--seed", BIG], f"seed = {BIG}"),
    ("backtest_every_zero", ["backtest", "--start", "2012-01", "--every", "0"], "--every 0: must be at least 1"),
    ("backtest_horizon_zero", ["backtest", "--start", "2012-01", "--horizons", "0,3"], "horizons (0, 3)"),
    ("backtest_bad_start_month", ["backtest", "--start", "2012-13"], "2012-13"),
    ("run_horizon_100000", ["run", "--horizon", "100000"], "horizon = 100000: at most 600 months"),
    ("run_one_chain", ["run", "--chains", "1"], "chains = 1: at least 2 chains"),
    ("run_paths_zero", ["run", "--paths", "0"], "paths = 0: must be at least 1"),
    ("run_seed_beyond_2_63", ["run", "--seed", BIG], f"seed = {BIG}"),
]


@pytest.mark.parametrize(("case", "args", "words"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_hostile_command_line(tmp_path, monkeypatch, case, args, words):
    """Each is refused at once: the data folder given does not exist and is never looked at
    (a check that came after reading data would name it instead), and nothing is written."""
    root = _workspace(tmp_path / "ws")
    monkeypatch.setenv("REGIMECAST_DATA_DIR", str(tmp_path / "nothing-here"))
    before = _tree(root)
    r = _cli(root, *args)
    _refused(r, [words], 3 if args[0] == "diagnose" else 1)       # diagnose: exit 3, could not diagnose
    assert "nothing-here" not in r.stderr
    assert _tree(root) == before


def _synthetic_run(runs_dir: Path, run_id: str = RUN_ID) -> Path:
    idata = az.from_dict(posterior={"x": np.arange(10.0).reshape(2, 5)})
    manifest = {"model": {"file": "models/default.toml", "text": "x"},
                "sampler": {"seed": 7, "chains": 2, "draws": 5, "tune": 5, "backend": "nutpie"},
                "data": {"dir": "/nothing-here", "end": "2013-12"}, "priors": {"file": "priors/baseline.toml"}}
    return runs.save_run(runs_dir, run_id, idata, manifest)


@pytest.mark.parametrize(("case", "args", "words"), [
    ("update_one_chain", ["--chains", "1"], "chains = 1: at least 2 chains"),
    ("update_seed_beyond_2_63", ["--seed", BIG], f"seed = {BIG}: expected an integer"),
    ("update_draws_zero", ["--draws", "0"], "draws = 0: must be at least 1"),
], ids=["update_one_chain", "update_seed_beyond_2_63", "update_draws_zero"])
def test_update_settings_are_refused_before_any_work(tmp_path, case, args, words):
    """Before: `update --chains 1` read the data and refitted, then failed on R-hat; a 2^64 seed
    was an OverflowError after the panel was built. The parent here has a model text that would
    not even parse: the settings are refused before it is looked at."""
    root = _workspace(tmp_path)
    _synthetic_run(root / "runs")
    before = _tree(root)
    r = _cli(root, "update", RUN_ID, *args)
    _refused(r, [words])
    assert _tree(root) == before


# ---- runs: damaged files, full disks, read-only folders, twins ----------------------------------
def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))


RUN_CASES = [
    ("truncated_idata_nc", lambda d: _truncate(d / "idata.nc"), "idata.nc does not match the manifest"),
    ("corrupt_idata_nc", lambda d: _flip(d / "idata.nc"), "idata.nc does not match the manifest"),
    ("idata_nc_deleted", lambda d: (d / "idata.nc").unlink(), "file idata.nc listed in the manifest is missing"),
    ("idata_nc_emptied", lambda d: (d / "idata.nc").write_bytes(b""), "idata.nc does not match the manifest"),
    ("manifest_not_json", lambda d: (d / "manifest.json").write_text("{not json"), "manifest.json: not valid JSON"),
    ("manifest_a_list", lambda d: (d / "manifest.json").write_text("[1, 2]"), "not a manifest (a JSON object)"),
    ("manifest_truncated", lambda d: _truncate(d / "manifest.json"), "manifest.json: not valid JSON"),
    ("manifest_not_utf8", lambda d: (d / "manifest.json").write_bytes(b'{"a": "\xff"}'), "not valid JSON"),
    ("manifest_lists_a_path", lambda d: _reseal(d, lambda m: m["files"].update({"../../x.nc": "0" * 64})),
     "names '../../x.nc', not a file of the run directory"),
    ("manifest_run_id_differs", lambda d: _reseal(d, lambda m: m.update(run_id="20200101T000000Z-x-1")),
     "does not match the directory name"),
]


def _reseal(d: Path, change) -> None:
    """Edit a manifest and seal it again (what a forger with the code could do)."""
    m = json.loads((d / "manifest.json").read_text())
    m.pop("integrity", None)
    change(m)
    (d / "manifest.json").write_text(runs._sealed(m))


@pytest.mark.parametrize(("case", "damage", "words"), RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_damaged_run_is_refused(tmp_path, case, damage, words):
    root = _workspace(tmp_path)
    d = _synthetic_run(root / "runs")
    damage(d)
    before = _tree(root)
    for cmd in (["report", str(d)], ["forecast", str(d)]):
        _refused(_cli(root, *cmd), [words])
    assert _tree(root) == before


def test_two_runs_sharing_a_prefix_are_ambiguous(tmp_path):
    root = _workspace(tmp_path)
    _synthetic_run(root / "runs", RUN_ID)
    _synthetic_run(root / "runs", RUN_ID[:-1] + "e")
    _refused(_cli(root, "report", RUN_ID[:20]), [f"run '{RUN_ID[:20]}': 2 matching run(s)"])


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "/ws/runs/x/idata.nc")


def test_a_full_disk_on_save_leaves_nothing_and_names_the_path(tmp_path, monkeypatch):
    """Before: a raw OSError (a traceback from the CLI); the half-written folder was removed."""
    monkeypatch.setattr(az.InferenceData, "to_netcdf", _enospc)
    with pytest.raises(RunError) as info:
        _synthetic_run(tmp_path / "runs")
    assert str(tmp_path / "runs" / RUN_ID) in str(info.value) and "No space left on device" in str(info.value)
    assert "nothing was written" in str(info.value)
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_full_disk_during_a_forecast_keeps_the_run(tmp_path):
    d = _synthetic_run(tmp_path / "runs")
    before = {p.name: p.read_bytes() for p in d.iterdir()}

    def full(p):
        Path(p).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(p))

    with pytest.raises(RunError) as info:
        runs.add_files(d, {"forecast_summary.nc": full}, {"forecast": {"x": 1}})
    assert str(d) in str(info.value) and "No space left on device" in str(info.value)
    assert "the run is unchanged" in str(info.value)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    runs.load_run(d)                                    # still valid


def test_a_read_only_runs_folder_names_the_path(tmp_path, monkeypatch):
    """Simulated (the tests may run as root, whom permissions do not stop): mkdtemp fails."""
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "runs"))

    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(RunError, match="Read-only file system") as info:
        _synthetic_run(tmp_path / "runs")
    assert str(tmp_path / "runs") in str(info.value)
    assert list((tmp_path / "runs").iterdir()) == []


def test_two_updates_saving_the_same_run_at_once(tmp_path, monkeypatch):
    """Two `update`s of one parent with the same inputs finishing in the same second make the
    same run id: the second is refused by name, the first stays whole. The race is forced: the
    second writer passes the existence check before the first renames its folder into place."""
    first = _synthetic_run(tmp_path / "runs")
    files = {p.name: p.read_bytes() for p in first.iterdir()}
    with pytest.raises(RunError, match="already exists") as info:
        _synthetic_run(tmp_path / "runs")
    assert str(first) in str(info.value)
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: False if p == first else real_exists(p))
    with pytest.raises(RunError, match="already exists; nothing was written|already exists"):
        _synthetic_run(tmp_path / "runs")
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [RUN_ID]
    assert {p.name: p.read_bytes() for p in first.iterdir()} == files


# ---- the README lists every case ----------------------------------------------------------------
def test_every_case_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Reliability"):]
    section = section[: section.index("\n## ", 5)]
    cases = {"test_hostile_data_file": DATA_CASES, "test_hostile_model_file": MODEL_CASES,
             "test_hostile_prior_file": PRIOR_CASES, "test_hostile_scenario_file": SCENARIO_CASES,
             "test_hostile_command_line": CLI_CASES, "test_damaged_run_is_refused": RUN_CASES}
    missing = [f"{t}[{c[0]}]" for t, cs in cases.items() for c in cs
               if f"`tests/test_hostile_inputs.py::{t}[{c[0]}]`" not in section]
    assert not missing, missing
    named = set(re.findall(r"test_hostile_inputs\.py::(test_\w+)", section))
    here = {n for n in globals() if n.startswith("test_") and n != "test_every_case_is_in_the_readme"}
    assert here <= named, sorted(here - named)
