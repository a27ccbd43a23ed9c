"""The scenario predicate language: named conditions over simulated paths.

A predicate is tokenized and parsed by recursive descent (:mod:`regimecast.scenarios.parser`)
into the frozen dataclasses defined here (never ``eval``), type-checked and resolved at parse
time (state names become indices), then evaluated here with an array namespace ``xp`` (NumPy,
or ``jax.numpy`` inside ``jax.jit``).
Precedence, lowest first: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``, unary
minus. Functions (h: integer literal, months): value/change/pct_change/max/min/
max_drawdown(series, h) give one number per path; ever/always/first/months(cond, h) reduce a
time-wise condition over months 1..h, inside which a bare series, ``drawdown(series)`` and
``factor == "state"`` are paths over months 1..h. Scenario files that name predicates are
:mod:`regimecast.scenarios.sets`.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from regimecast.errors import RegimecastError

KEYWORDS = ("and", "or", "not")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
ARITHMETIC = ("+", "-", "*", "/")
PRECEDENCE = {"or": 1, "and": 2, **dict.fromkeys(COMPARISONS, 4), "+": 5, "-": 5, "*": 6, "/": 6}
NOT_PRECEDENCE = 3
MAX_DEPTH = 100                       # nesting of a predicate's tree (parser and evaluator recurse)
MAX_TOKENS = 1000                     # a predicate's length (shipped ones: under 40 tokens)
TYPE_NAMES = {"num": "number", "bool": "condition", "factor": "factor", "str": "quoted state"}
Array = Any



class PredicateError(RegimecastError):
    """A predicate does not parse or type-check; names the scenario and the offending token."""

    def __init__(self, scenario: str, token: str, problem: str):
        self.scenario, self.token, self.problem = scenario, token, problem
        super().__init__(f"scenario '{scenario}': {problem} (at '{token}')")


# ---- AST -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class SeriesPath:
    """Inside a time function: ``fn`` "level" (bare series) or "drawdown" over months 1..h."""
    series: str
    fn: str = "level"


@dataclass(frozen=True)
class StateIs:
    """Time-wise ``factor == state`` (``!=`` when ``negate``); ``index`` in the factor's state order."""
    factor: str
    state: str
    index: int
    negate: bool = False


@dataclass(frozen=True)
class SeriesFn:
    """``fn(series, h)``: one number per path from the levels at months 0..h."""
    fn: str
    series: str
    h: int


@dataclass(frozen=True)
class TimeFn:
    """``fn(cond, h)`` over months 1..h: ever/always (bool), first/months (int)."""
    fn: str
    cond: Expr
    h: int


@dataclass(frozen=True)
class Unary:
    op: str                           # "-" or "not"
    operand: Expr


@dataclass(frozen=True)
class Binary:
    op: str                           # arithmetic, comparison, "and", "or"
    left: Expr
    right: Expr


Expr = Num | SeriesPath | StateIs | SeriesFn | TimeFn | Unary | Binary


# ---- evaluation kernels (pure; xp is numpy or jax.numpy) ----------------------------------
def _drawdown_path(x: Array, h: int, xp) -> Array:
    """Fall from the running peak (origin included) at months 1..h, fraction; (..., H+1) -> (..., h)."""
    peak, out = x[..., 0], []
    for t in range(1, h + 1):          # static, small horizon: same code in NumPy and jax.jit
        peak = xp.maximum(peak, x[..., t])
        out.append(1 - x[..., t] / peak)
    return xp.stack(out, axis=-1)


SERIES_FUNCTIONS = {                  # levels x (..., H+1), month 0 the origin -> (...)
    "value": lambda x, h, xp: x[..., h],
    "change": lambda x, h, xp: x[..., h] - x[..., 0],
    "pct_change": lambda x, h, xp: x[..., h] / x[..., 0] - 1,
    "max": lambda x, h, xp: xp.max(x[..., 1:h + 1], axis=-1),
    "min": lambda x, h, xp: xp.min(x[..., 1:h + 1], axis=-1),
    "max_drawdown": lambda x, h, xp: xp.maximum(xp.max(_drawdown_path(x, h, xp), axis=-1), 0.0),
}
PATH_FUNCTIONS = {"drawdown": _drawdown_path}   # levels (..., H+1) -> path (..., h)
TIME_FUNCTIONS = {                    # condition (..., h) -> (...)
    "ever": lambda c, h, xp: xp.any(c, axis=-1),
    "always": lambda c, h, xp: xp.all(c, axis=-1),
    "months": lambda c, h, xp: xp.sum(c, axis=-1),
    "first": lambda c, h, xp: xp.where(xp.any(c, axis=-1), xp.argmax(c, axis=-1) + 1, h + 1),
}
FUNCTIONS = (*SERIES_FUNCTIONS, *PATH_FUNCTIONS, *TIME_FUNCTIONS)
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
        "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}


# ---- evaluation ------------------------------------------------------------------------
def _window(a: Array, n: int, what: str) -> Array:
    """``a`` unchanged if its last axis has at least ``n`` steps (shapes are static under jit)."""
    if a.shape[-1] < n:
        raise ValueError(f"'{what}' has {a.shape[-1]} time steps; the predicate needs {n}")
    return a


def _finite(value: Array, ok: Array, what: str, env: tuple) -> Array:
    """``value`` (NumPy) unchanged, or a PredicateError where it is non-finite although its
    inputs were finite (``ok``): a division by zero or an overflow, whose inf or nan would
    decide a comparison silently. NaN already in the paths (a missing month) passes through."""
    made = ~np.isfinite(value) & ok
    if np.any(made):
        n, total = int(np.count_nonzero(made)), int(np.size(made))
        raise PredicateError(env[3] if len(env) > 3 else "<expr>", what,
                             f"'{what}' gives a non-finite number (inf or nan) on {n} of {total} "
                             "path values (division by zero?)")
    return value


def _eval(node: Expr, env: tuple, h: int | None, xp) -> Array:
    """Per-path values (...); inside a time function (``h`` set) time-wise (..., h) or (..., 1)."""
    series, states, batch = env[:3]
    lift = (lambda v: v) if h is None else (lambda v: v[..., None])
    match node:
        case Num(value):
            return value
        case SeriesPath(name, "level"):
            return _window(series[name], h + 1, name)[..., 1:h + 1]
        case SeriesPath(name, fn):
            return PATH_FUNCTIONS[fn](_window(series[name], h + 1, name), h, xp)
        case StateIs(factor, _, index, negate):
            s = _window(states[factor], h, factor)[..., :h]
            return (s != index) if negate else (s == index)
        case SeriesFn(fn, name, k):
            x = _window(series[name], k + 1, name)
            if xp is not np:
                return lift(SERIES_FUNCTIONS[fn](x, k, xp))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                v = SERIES_FUNCTIONS[fn](x, k, xp)
            return lift(_finite(v, np.isfinite(x[..., :k + 1]).all(axis=-1), f"{fn}({name}, {k})", env))
        case TimeFn(fn, cond, k):
            c = xp.broadcast_to(_eval(cond, env, k, xp), (*batch, k))
            return lift(TIME_FUNCTIONS[fn](c, k, xp))
        case Unary("not", operand):
            return xp.logical_not(_eval(operand, env, h, xp))
        case Unary(_, operand):
            return -_eval(operand, env, h, xp)
        case Binary("and" | "or" as op, left, right):
            combine = xp.logical_and if op == "and" else xp.logical_or
            return combine(_eval(left, env, h, xp), _eval(right, env, h, xp))
        case Binary(op, left, right):
            a, b = _eval(left, env, h, xp), _eval(right, env, h, xp)
            if op not in ARITHMETIC or xp is not np:
                return OPERATORS[op](a, b)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return _finite(OPERATORS[op](np.asarray(a, float), b), np.isfinite(a) & np.isfinite(b), op, env)
    raise TypeError(f"not an expression node: {node!r}")


def evaluate(expr: Expr, series_paths: Mapping[str, Array], state_paths: Mapping[str, Array],
             xp=np, name: str = "<expr>") -> Array:
    """Boolean (...) per path. ``series_paths[name]``: levels (..., H+1), index 0 the origin
    (last observed month), index h the level h months ahead; ``state_paths[factor]``: int
    (..., H), index h-1 the state index at month h. Pure; usable inside ``jax.jit``. With NumPy,
    arithmetic that turns finite numbers into inf or NaN is a PredicateError naming ``name``."""
    arrays = [*series_paths.values(), *state_paths.values()]
    batch = tuple(arrays[0].shape[:-1]) if arrays else ()
    return xp.broadcast_to(_eval(expr, (series_paths, state_paths, batch, name), None, xp), batch)


# ---- what a predicate refers to ------------------------------------------------------------
def _nodes(expr: Expr) -> Iterator[Expr]:
    yield expr
    for f in dataclasses.fields(expr):
        v = getattr(expr, f.name)
        if dataclasses.is_dataclass(v):
            yield from _nodes(v)


def latent_factors(expr: Expr) -> set[str]:
    """The latent factors a predicate tests (empty: decidable from the series alone)."""
    return {n.factor for n in _nodes(expr) if isinstance(n, StateIs)}


def series_used(expr: Expr) -> set[str]:
    """The observed series a predicate reads."""
    return {n.series for n in _nodes(expr) if isinstance(n, (SeriesPath, SeriesFn))}
