"""Scenario language: parser, evaluator (NumPy and jax.jit), file validation, summaries."""

from __future__ import annotations

import ast
import builtins
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from regimecast.scenarios import predicates as pr
from regimecast.scenarios import sets as sc
from regimecast.errors import ConfigError
from regimecast.scenarios.parser import parse
from regimecast.scenarios.predicates import Binary, Num, PredicateError, SeriesFn, StateIs, TimeFn, Unary, evaluate
from regimecast.scenarios.sets import load_scenarios, summarise

SERIES = ("y10", "equity", "gold", "vix", "fedfunds", "balance_sheet", "inflation")
FACTORS = {"policy": ("hike", "hold", "qt", "cut", "cut_qt", "qe"),
           "ai": ("delayed", "realised"), "backlash": ("low", "high")}
HIKE, HOLD, QT, CUT, CUT_QT, QE = range(6)
DOC_003 = ("soft_landing_cut_qt", "tech_correction_no_qe", "bubble_burst_then_qe")


def p(text: str, horizon: int = 12, name: str = "sc") -> pr.Expr:
    return parse(text, series=SERIES, factors=FACTORS, horizon=horizon, name=name)


def paths() -> tuple[dict, dict]:
    """Two hand-built paths, H = 4 months ahead; index 0 of a level series is the origin."""
    series = {
        "equity": np.array([[100.0, 110.0, 88.0, 99.0, 120.0],     # peak 110 then 88: dd 0.2
                            [100.0, 90.0, 80.0, 85.0, 70.0]]),     # origin is the peak: dd 0.3
        "y10": np.array([[4.5, 4.8, 5.1, 4.9, 4.0],
                         [4.5, 4.2, 3.9, 3.4, 3.6]]),
    }
    states = {"policy": np.array([[CUT, CUT_QT, HIKE, HIKE],
                                  [CUT, CUT, QE, QE]]),
              "ai": np.array([[0, 1, 1, 0], [0, 0, 0, 0]])}
    return series, states


def ev(text: str, horizon: int = 4) -> np.ndarray:
    series, states = paths()
    return evaluate(p(text, horizon), series, states)


def ev_num(text: str, horizon: int = 4) -> np.ndarray:
    """Values (2,) of a numeric expression, parsed as the left side of a comparison."""
    series, states = paths()
    return pr._eval(p(f"{text} == 0", horizon).left, (series, states, (2,)), None, np)


def load_factors(repo_root) -> dict[str, tuple[str, ...]]:
    doc = tomllib.loads((repo_root / "models" / "default.toml").read_text())
    return {f["name"]: tuple(f["states"]) for f in doc["factors"]}


# ---- parser --------------------------------------------------------------------------------
def test_precedence_builds_the_expected_tree():
    assert p("value(y10, 1) + 2 * 3 > 4") == Binary(">", Binary("+", SeriesFn("value", "y10", 1),
                                                               Binary("*", Num(2.0), Num(3.0))), Num(4.0))
    a, b, c = (Binary(">", SeriesFn("value", "y10", k), Num(0.0)) for k in (1, 2, 3))
    assert p("value(y10, 1) > 0 or value(y10, 2) > 0 and value(y10, 3) > 0") == Binary("or", a, Binary("and", b, c))
    assert p("not value(y10, 1) > 0 and value(y10, 2) > 0") == Binary("and", Unary("not", a), b)
    assert p("(value(y10, 1) > 0 or value(y10, 2) > 0) and value(y10, 3) > 0") == Binary("and", Binary("or", a, b), c)
    assert p("-value(y10, 1) * 2 < -3") == Binary("<", Binary("*", Unary("-", SeriesFn("value", "y10", 1)), Num(2.0)),
                                                  Num(-3.0))
    assert p('ever(policy != "qe", 3)') == TimeFn("ever", StateIs("policy", "qe", QE, True), 3)


def test_arithmetic_values():
    np.testing.assert_allclose(ev_num("value(y10, 1) + 2 * 3"), [10.8, 10.2])
    np.testing.assert_allclose(ev_num("(value(y10, 1) + 2) * 3"), [20.4, 18.6])
    np.testing.assert_allclose(ev_num("value(equity, 1) / 10 - 1"), [10.0, 8.0])
    np.testing.assert_allclose(ev_num("--value(y10, 1) - -1"), [5.8, 5.2])
    np.testing.assert_allclose(ev_num("10 - 4 - 3"), 3.0)        # left-associative
    np.testing.assert_allclose(ev_num("12 / 2 / 3"), 2.0)


@pytest.mark.parametrize(("text", "expected"), [
    ("value(equity, 2)", [88.0, 80.0]),
    ("change(equity, 4)", [20.0, -30.0]),
    ("pct_change(equity, 1)", [0.1, -0.1]),
    ("max(equity, 3)", [110.0, 90.0]),               # months 1..h: the origin is excluded
    ("min(equity, 4)", [88.0, 70.0]),
    ("max_drawdown(equity, 2)", [0.2, 0.2]),         # path 2: the origin (100) is the peak
    ("max_drawdown(equity, 4)", [0.2, 0.3]),
    ("max_drawdown(equity, 1)", [0.0, 0.1]),
    ("months(y10 > 4.7, 4)", [3, 0]),
    ("months(policy == \"hike\", 4)", [2, 0]),
    ("first(policy == \"hike\", 4)", [3, 5]),        # never: h + 1
    ("first(policy == \"hike\", 2)", [3, 3]),
    ("first(y10 < 3.5, 4)", [5, 3]),
    ("first(drawdown(equity) > 0.15, 4)", [2, 2]),
    ("first(drawdown(equity) > 0.25, 4)", [5, 4]),
    ("months(value(y10, 4) > 3.8, 3)", [3, 0]),      # a per-path number inside a time function
])
def test_functions_on_tiny_paths(text, expected):
    np.testing.assert_allclose(ev_num(text), expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("ever(y10 > 5.0, 4)", [True, False]),
    ("ever(y10 > 5.0, 1)", [False, False]),
    ("always(y10 > 4.0, 3)", [True, False]),
    ("always(y10 >= 4.0, 4)", [True, False]),
    ("ever(y10 < 3.5, 4)", [False, True]),
    ('ever(policy == "qe", 4)', [False, True]),
    ('ever(policy == "qe", 2)', [False, False]),
    ('always(policy != "hike", 4)', [False, True]),
    ('ever(policy == "cut_qt" and ai == "realised", 4)', [True, False]),
    ('first(policy == "cut_qt", 4) < first(policy == "hike", 4)', [True, False]),
    ('ever(policy == "hike" or y10 < 3.5, 4)', [True, True]),
    ('not ever(policy == "qe", 4)', [True, False]),
    ("max_drawdown(equity, 4) > 0.25 or change(y10, 4) < -0.6", [False, True]),
    ("max_drawdown(equity, 4) > 0.1 and not change(equity, 4) > 0", [False, True]),
    ("value(y10, 1) != 4.2 and value(y10, 4) == 4.0", [True, False]),
    ("ever(y10 - value(y10, 4) > 0.8, 4)", [True, False]),
    ("ever(drawdown(equity) > 0.19, 4)", [True, True]),
    ("ever(drawdown(equity) > 0.21, 4)", [False, True]),
])
def test_conditions_on_tiny_paths(text, expected):
    assert ev(text).tolist() == expected


def test_result_shape_follows_the_batch():
    series, states = paths()
    batch = {k: np.broadcast_to(v, (3, *v.shape)) for k, v in series.items()}
    sbatch = {k: np.broadcast_to(v, (3, *v.shape)) for k, v in states.items()}
    out = evaluate(p("ever(y10 > 5.0, 4) or 1 < 0", 4), batch, sbatch)
    assert out.shape == (3, 2) and out.dtype == bool
    assert evaluate(p("1 < 2", 4), batch, sbatch).shape == (3, 2)


def test_paths_shorter_than_the_predicate_are_refused():
    series, states = paths()
    with pytest.raises(ValueError, match="equity"):
        evaluate(p("max(equity, 5) > 0", 12), series, states)
    with pytest.raises(ValueError, match="policy"):
        evaluate(p('ever(policy == "qe", 5)', 12), series, states)


# ---- parse errors: each names the scenario and the token ---------------------------------
@pytest.mark.parametrize(("text", "token", "words"), [
    ("foo(y10, 3) > 1", "foo", "unknown function"),
    ("value(y11, 3) > 1", "y11", "unknown series"),
    ("ever(y11 > 1, 3)", "y11", "unknown series"),
    ('ever(policy == "qe2", 3)', '"qe2"', "unknown state"),
    ('ever(polcy == "qe", 3)', "polcy", "unknown factor"),
    ("value(y10, 13) > 1", "13", "exceeds the scenario horizon 12"),
    ("value(y10, 0) > 1", "0", "integer literal >= 1"),
    ("value(y10, 2.5) > 1", "2.5", "integer literal >= 1"),
    ("value(y10, 3)", "value", "expected a condition, got a number"),
    ("value(y10, 3) + 1", "value", "expected a condition, got a number"),
    ("months(y10 > 1, 3)", "months", "expected a condition, got a number"),
    ("ever(y10, 3)", "y10", "expected a condition, got a number"),
    ("ever(policy, 3)", "policy", "expected a condition, got a factor"),
    ("value(y10, 3) > 1 and 2", "2", "expected a condition, got a number"),
    ("ever(y10 > 1, 3) + 1 > 0", "ever", "expected a number, got a condition"),
    ("y10 > 5.0", "y10", "bare series"),
    ('policy == "qe"', "policy", "time-wise"),
    ("drawdown(equity) > 0.1", "drawdown", "time-wise"),
    ('ever(policy < "qe", 3)', "policy", "== or !="),
    ("value(y10, 3) > 1 $", "$", "unexpected character"),
    ("value(y10, 3) > @1", "@", "unexpected character"),
    ("(value(y10, 3) > 1", "end of predicate", "expected ')'"),
    ("value(y10, 3) > 1)", ")", "unexpected token"),
    ("ever(y10 > 1 12)", "12", "expected ','"),
    ("value(y10, 3) > > 1", ">", "expected a number, a name"),
    ("", "end of predicate", "expected a number, a name"),
])
def test_parse_errors_name_scenario_and_token(text, token, words):
    with pytest.raises(PredicateError) as info:
        p(text, name="my_scenario")
    msg = str(info.value)
    assert "my_scenario" in msg and f"'{token}'" in msg and words in msg
    assert info.value.token == token and info.value.scenario == "my_scenario"


@pytest.mark.parametrize("text", ["__import__('os').system('true')", '__import__("os")',
                                  "eval(1)", "exec(1)", "y10.__class__", "[1]", "lambda: 1"])
def test_python_code_is_rejected(text):
    with pytest.raises(PredicateError):
        p(text)


def test_no_eval_or_exec(monkeypatch):
    calls = [n.func for m in (pr, sc) for n in ast.walk(ast.parse(open(m.__file__, encoding="utf-8").read()))
             if isinstance(n, ast.Call)]
    names = {f.id for f in calls if isinstance(f, ast.Name)} | {f.attr for f in calls if isinstance(f, ast.Attribute)}
    assert not names & {"eval", "exec", "literal_eval", "__import__"}
    assert "compile" not in {f.id for f in calls if isinstance(f, ast.Name)}       # re.compile is fine

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec must not be used")
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert ev('ever(policy == "qe", 4) and max_drawdown(equity, 4) > 0.25').tolist() == [False, True]


# ---- files ---------------------------------------------------------------------------------
def test_shipped_scenarios_load(repo_root):
    ss = load_scenarios(repo_root / "models" / "scenarios.toml", series=SERIES, factors=load_factors(repo_root))
    names = [s.name for s in ss.scenarios]
    assert set(names) >= {*DOC_003, "double_kill", "everything_down", "y10_above_5", "y10_below_3_5",
                          "equity_drawdown_10", "equity_drawdown_20", "qe_restart_6m", "qe_restart_12m",
                          "qe_restart_24m"}
    assert len(names) == len(set(names))
    assert ss.policy_horizons == (3, 6, 12, 24) and ss.max_horizon == 24
    assert all(s.description and s.horizon >= 1 for s in ss.scenarios)


def test_shipped_scenarios_on_tiny_paths(repo_root):
    ss = load_scenarios(repo_root / "models" / "scenarios.toml", series=SERIES, factors=load_factors(repo_root))
    by = {s.name: s.expr for s in ss.scenarios}
    h = 24
    up = np.linspace(100.0, 130.0, h + 1)                    # steady rise: no drawdown
    crash = np.concatenate([[100.0, 105.0, 95.0, 80.0, 70.0], np.full(h - 4, 75.0)])   # dd > 0.2 from month 3
    const = np.full(h + 1, 10.0)

    def run(name, equity, policy, gold=const, vix=const, y10=const):
        series = {"equity": equity, "gold": gold, "vix": vix, "y10": y10}
        return bool(evaluate(by[name], series, {"policy": np.asarray(policy)}))

    cut = [CUT] * h
    assert run("soft_landing_cut_qt", up, cut)
    assert not run("soft_landing_cut_qt", up, [HIKE] + cut[1:])
    assert not run("soft_landing_cut_qt", up, [HOLD] * 7 + cut[7:])          # easing in only 5 of 12
    assert run("tech_correction_no_qe", crash, cut) and not run("bubble_burst_then_qe", crash, cut)
    qe_after = [CUT] * 5 + [QE] * (h - 5)                                    # QE from month 6
    qe_before = [QE] * 2 + [CUT] * (h - 2)                                    # QE in months 1-2
    assert run("bubble_burst_then_qe", crash, qe_after)
    assert not run("bubble_burst_then_qe", crash, qe_before)                 # QE before the crash
    assert run("bubble_burst_then_qe", crash, [CUT] * 2 + [QE] * (h - 2))     # same month as the crash
    assert run("double_kill", crash, [CUT_QT] * 3 + [HIKE] * (h - 3))
    assert not run("double_kill", crash, [HIKE] * 3 + [CUT_QT] * (h - 3))
    down = np.linspace(10.0, 9.0, h + 1)
    assert run("everything_down", crash, cut, gold=down, vix=down)
    assert not run("everything_down", crash, cut, gold=down, vix=const)
    months = np.arange(h + 1)
    assert run("y10_above_5", up, cut, y10=4.5 + 0.1 * months)               # 5.1 at month 6
    assert not run("y10_above_5", up, cut, y10=4.5 + 0.04 * months)          # 4.98 at month 12
    assert run("y10_below_3_5", up, cut, y10=4.5 - 0.1 * months)             # 3.4 at month 11
    assert not run("y10_below_3_5", up, cut, y10=4.5 - 0.08 * months)        # 3.54 at month 12
    assert run("equity_drawdown_20", crash, cut) and not run("equity_drawdown_10", up, cut)
    qe_month_9 = [CUT] * 8 + [QE] * (h - 8)
    assert [run(f"qe_restart_{m}m", up, qe_month_9) for m in (6, 12, 24)] == [False, True, True]


def _write(tmp_path, body: str, name: str = "bad.toml"):
    f = tmp_path / name
    f.write_text(body)
    return f


HEAD = "schema_version = 1\n[policy]\nhorizons = [3]\n"
GOOD = 'name = "s1"\ndescription = "d"\nhorizon = 12\npredicate = "ever(y10 > 5.0, 12)"\n'


def with_scenario(*replace: tuple[str, str], head: str = HEAD, extra: str = "") -> str:
    """A scenario file: ``head``, then one [[scenario]] (GOOD with ``replace`` applied), then ``extra``."""
    body = GOOD
    for old, new in replace:
        body = body.replace(old, new)
    return f"{head}[[scenario]]\n{body}{extra}"


@pytest.mark.parametrize(("body", "key", "words"), [
    (with_scenario(extra="extra = 1\n"), "scenario[0].extra", "unknown key"),
    (HEAD + '[[scenario]]\nname = "s1"\n', "scenario[0].description", "missing"),
    (with_scenario(("horizon = 12", 'horizon = "12"')), "scenario[0].horizon", "expected an integer"),
    (with_scenario(("horizon = 12", "horizon = true")), "scenario[0].horizon", "expected an integer"),
    (with_scenario(('"s1"', '"s 1"')), "scenario[0].name", "unique identifiers"),
    (with_scenario(extra=f"[[scenario]]\n{GOOD}"), "scenario[1].name", "unique"),
    (with_scenario(("horizon = 12", "horizon = 0")), "scenario.s1.horizon", "horizon must be >= 1"),
    (with_scenario(("5.0, 12", "5.0, 13")), "scenario.s1.predicate", "'13'"),
    (with_scenario(("ever", "evar")), "scenario.s1.predicate", "'evar'"),
    (with_scenario(("y10", "y11")), "scenario.s1.predicate", "'y11'"),
    (with_scenario(("ever(y10 > 5.0, 12)", "value(y10, 12)")), "scenario.s1.predicate", "condition"),
    (with_scenario(head=HEAD.replace("= 1", "= 2")), "schema_version", "schema_version = 1"),
    (with_scenario(head=HEAD.replace("[3]", "[0]")), "policy.horizons", ">= 1"),
    (with_scenario(head=HEAD + "foo = 1\n"), "policy.foo", "unknown key"),
    (with_scenario(head="schema_version = 1\n"), "policy", "missing"),
    (with_scenario(head="scenarios = 1\n" + HEAD), "scenarios", "unknown key"),
    ("schema_version = 1\n[policy\n", "<file>", "cannot read"),
])
def test_file_validation(tmp_path, body, key, words):
    f = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_scenarios(f, series=SERIES, factors=FACTORS)
    assert info.value.key == key and info.value.file == str(f)
    assert words in str(info.value)
    if key.startswith("scenario.") and key.endswith("predicate"):
        assert "scenario 's1'" in str(info.value)


@pytest.mark.parametrize(("predicate", "token"), [('ever(policy == "qe2", 3)', '"qe2"'),
                                                  ('ever(fed == "qe", 3)', "fed")])
def test_unknown_state_and_factor_in_file(tmp_path, predicate, token):
    f = _write(tmp_path, with_scenario(('"s1"', '"s9"'), ('"ever(y10 > 5.0, 12)"', f"'{predicate}'")))
    with pytest.raises(ConfigError, match="scenario 's9'") as info:
        load_scenarios(f, series=SERIES, factors=FACTORS)
    assert f"'{token}'" in str(info.value) and info.value.key == "scenario.s9.predicate"


# ---- NumPy and jax.jit agree -------------------------------------------------------------
def random_paths(seed: int, n: int, h: int) -> tuple[dict, dict]:
    """Random-walk levels (positive, log steps) and i.i.d. random states, shape (n, h+1) / (n, h)."""
    rng = np.random.default_rng(seed)

    def walk(start: float, vol: float) -> np.ndarray:
        steps = np.cumsum(rng.normal(0.0, vol, (n, h)), axis=1)
        return start * np.exp(np.concatenate([np.zeros((n, 1)), steps], axis=1))

    series = {"y10": walk(4.5, 0.06), "equity": walk(100.0, 0.08), "gold": walk(2000.0, 0.05),
              "vix": walk(18.0, 0.2), "fedfunds": walk(4.0, 0.05), "balance_sheet": walk(6.6, 0.02),
              "inflation": walk(3.0, 0.1)}
    # sticky policy chain so that ordering predicates are exercised, i.i.d. for the others
    policy = np.empty((n, h), dtype=np.int64)
    policy[:, 0] = rng.integers(0, len(FACTORS["policy"]), n)
    for t in range(1, h):
        switch = rng.random(n) < 0.25
        policy[:, t] = np.where(switch, rng.integers(0, len(FACTORS["policy"]), n), policy[:, t - 1])
    states = {"policy": policy, "ai": rng.integers(0, 2, (n, h)), "backlash": rng.integers(0, 2, (n, h))}
    return series, states


def test_numpy_and_jax_jit_agree(repo_root):
    jax.config.update("jax_enable_x64", True)

    ss = load_scenarios(repo_root / "models" / "scenarios.toml", series=SERIES, factors=load_factors(repo_root))
    extra = [p(t, 24) for t in ("months(y10 > value(y10, 2), 12) >= 6 or min(gold, 5) < 1900",
                                "pct_change(vix, 3) * 100 > 10 and always(backlash != \"high\", 2)",
                                "max(equity, 24) / value(equity, 1) > 1.3",
                                'first(policy == "qe", 24) + months(drawdown(equity) > 0.1, 24) > 12')]
    exprs = [s.expr for s in ss.scenarios] + extra
    series, states = random_paths(7, 500, 24)
    to_jax = lambda d: {k: jnp.asarray(v) for k, v in d.items()}                   # noqa: E731
    for expr in exprs:
        want = evaluate(expr, series, states)
        got = jax.jit(lambda s, z, e=expr: evaluate(e, s, z, xp=jnp))(to_jax(series), to_jax(states))
        assert got.shape == want.shape == (500,)
        np.testing.assert_array_equal(np.asarray(got), want)


def test_document_003_scenarios_are_mutually_exclusive(repo_root):
    ss = load_scenarios(repo_root / "models" / "scenarios.toml", series=SERIES, factors=load_factors(repo_root))
    by = {s.name: s.expr for s in ss.scenarios}
    series, states = random_paths(3, 4000, 24)
    hits = np.stack([evaluate(by[name], series, states) for name in DOC_003])
    assert hits.sum(axis=0).max() <= 1
    assert (hits.sum(axis=1) > 0).all()            # each scenario does occur on these paths
    mdd = evaluate(p("max_drawdown(equity, 12) > 0.2"), series, states)
    np.testing.assert_array_equal(mdd, evaluate(p("ever(drawdown(equity) > 0.2, 12)"), series, states))


# ---- summaries -----------------------------------------------------------------------------
def test_summarise_matches_numpy():
    rng = np.random.default_rng(11)
    x = rng.random((40, 300)) < np.linspace(0.1, 0.4, 40)[:, None]
    out = summarise(xr.DataArray(x, dims=("draw", "path")))
    pd_ = x.mean(axis=1)
    assert out == {"mean": pytest.approx(pd_.mean(), abs=1e-15),
                   "lo": pytest.approx(np.quantile(pd_, 0.05), abs=1e-15),
                   "hi": pytest.approx(np.quantile(pd_, 0.95), abs=1e-15),
                   "mcse": pytest.approx(np.sqrt(pd_.var(ddof=1) / 40), abs=1e-15)}
    assert all(type(v) is float for v in out.values())


def test_summarise_exact_small_case():
    ind = xr.DataArray(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]), dims=("draw", "path"))
    out = summarise(ind.transpose("path", "draw"))           # dim order does not matter
    assert out["mean"] == pytest.approx(0.5)
    assert out["lo"] == pytest.approx(0.25 + 0.1 * 0.25) and out["hi"] == pytest.approx(0.75 - 0.1 * 0.25)
    assert out["mcse"] == pytest.approx(np.sqrt(0.0625 / 3))     # var_d (ddof=1) of (.25, .5, .75)
    with pytest.raises(ValueError, match="draw"):
        summarise(xr.DataArray(np.zeros((2, 3)), dims=("chain", "path")))


# ---- issue 21 items 12 and 14: non-finite numbers, division by zero, deep nesting -------------
@pytest.mark.parametrize(("text", "token", "words"), [
    ("value(y10, 12) / 0 > 1", "0", "division by zero"),
    ("value(y10, 12) / (2 - 2) > 1", "(", "division by zero"),
    ("1 / 0 > 0", "0", "division by zero"),
    ("value(y10, 3) > 1e999999", "1e999999", "not a finite number"),
    ("value(y10, 3) > 1e308 * 10", "1e308", "out of range"),
    ("(" * 400 + "value(y10, 3) > 1" + ")" * 400, "(", "nested more than 100 levels"),
    ("-" * 400 + "value(y10, 3) > 1", "-", "nested more than 100 levels"),
    ("not " * 400 + "value(y10, 3) > 1", "not", "nested more than 100 levels"),
    ("value(y10, 3)" + " + value(y10, 3)" * 120 + " > 1", "value", "nested more than 100 levels"),
    ("value(y10, 3)" + " + 1" * 2000 + " > 1", "+", "longer than 1000 tokens"),
])
def test_unsafe_predicates_are_parse_errors(text, token, words):
    """Before: 100% from a division by zero, inf from a literal, RecursionError when nested."""
    with pytest.raises(PredicateError) as info:
        p(text, name="my_scenario")
    assert info.value.scenario == "my_scenario" and info.value.token == token and words in str(info.value)


def test_non_finite_arithmetic_over_paths_is_an_evaluation_error():
    """A zero known only on the paths: an error naming the scenario and the operator, not a
    comparison with inf or nan that silently decides every path."""
    expr = p("value(y10, 1) / (value(y10, 1) - value(y10, 1)) > 1", 4)
    series, states = paths()
    with pytest.raises(PredicateError, match=r"scenario 'zero': '/' gives a non-finite.*2 of 2 path values"):
        evaluate(expr, series, states, name="zero")
    flat = {k: np.zeros_like(v) if k == "equity" else v for k, v in series.items()}
    with pytest.raises(PredicateError, match=r"pct_change\(equity, 1\)"):
        evaluate(p("pct_change(equity, 1) > 0", 4), flat, states, name="flat")


def test_missing_values_still_propagate_quietly():
    """NaN in the paths themselves (a realised month missing) is not the predicate's doing."""
    series, states = paths()
    series = {k: v.astype(float) for k, v in series.items()}
    series["y10"][0, 1] = np.nan
    assert evaluate(p("value(y10, 1) * 2 > 1", 4), series, states).tolist() == [False, True]


def test_division_by_zero_in_a_scenario_file_fails_at_load(tmp_path, repo_root):
    """Before simulating: the scenario file is refused with the scenario and the token."""
    body = with_scenario(("ever(y10 > 5.0, 12)", "value(y10, 12) / 0 > 1"))
    with pytest.raises(ConfigError, match=r"scenario.s1.predicate.*division by zero \(at '0'\)"):
        load_scenarios(_write(tmp_path, body), series=SERIES, factors=FACTORS)
