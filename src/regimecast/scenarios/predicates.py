"""The scenario predicate language: named conditions over simulated paths.

A predicate is tokenized and parsed here by recursive descent into frozen dataclasses (never
``eval``), type-checked and resolved at parse time (state names become indices), then
evaluated with an array namespace ``xp`` (NumPy, or ``jax.numpy`` inside ``jax.jit``).
Precedence, lowest first: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``, unary
minus. Functions (h: integer literal, months): value/change/pct_change/max/min/
max_drawdown(series, h) give one number per path; ever/always/first/months(cond, h) reduce a
time-wise condition over months 1..h, inside which a bare series, ``drawdown(series)`` and
``factor == "state"`` are paths over months 1..h. Scenario files that name predicates are
:mod:`regimecast.scenarios.sets`.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Iterator, Mapping, Sequence
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

_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
    |(?P<str>"[^"\n]*")|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op><=|>=|==|!=|[<>()+\-*/,]))""", re.X)
IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


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
_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
        "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}


# ---- tokenizer and parser ----------------------------------------------------------------
def _tokenize(text: str, name: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs, kind in num/str/name/op/kw, ending with ``("end", ...)``."""
    out, pos = [], 0
    while text[pos:].strip():
        if (m := _TOKEN.match(text, pos)) is None:
            raise PredicateError(name, text[pos:].lstrip()[:1], "unexpected character")
        kind = m.lastgroup
        out.append(("kw" if kind == "name" and m[kind] in KEYWORDS else kind, m[kind]))
        pos = m.end()
        if len(out) > MAX_TOKENS:
            raise PredicateError(name, m[kind], f"predicate longer than {MAX_TOKENS} tokens")
    return [*out, ("end", "end of predicate")]


class _Parser:
    """Recursive descent; each rule returns ``(node, type)``, type a key of TYPE_NAMES.

    ``depth`` > 0 inside a time function, where paths (bare series, factor tests) are allowed.
    """

    def __init__(self, text: str, series: Sequence[str], factors: Mapping[str, Sequence[str]],
                 horizon: int, name: str):
        self.toks, self.i, self.depth, self.level = _tokenize(text, name), 0, 0, 0
        self.series, self.factors, self.horizon, self.name = tuple(series), factors, horizon, name

    def fail(self, token: str, problem: str) -> PredicateError:
        return PredicateError(self.name, token, problem)

    def peek(self, k: int = 0) -> tuple[str, str]:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self, *texts: str) -> str | None:
        kind, text = self.peek()
        if kind in ("op", "kw") and text in texts:
            self.i += 1
            return text
        return None

    def expect(self, text: str) -> None:
        if self.take(text) is None:
            raise self.fail(self.peek()[1], f"expected '{text}'")

    def typed(self, rule, want: str) -> Expr:
        tok = self.peek()[1]
        node, typ = rule()
        if typ != want:
            raise self.fail(tok, f"expected a {TYPE_NAMES[want]}, got a {TYPE_NAMES[typ]}")
        return node

    def nested(self, rule):
        """``rule()`` one level deeper; past MAX_DEPTH levels an error (not a RecursionError)."""
        self.level += 1
        if self.level > MAX_DEPTH:
            raise self.fail(self.peek()[1], f"nested more than {MAX_DEPTH} levels deep")
        try:
            return rule()
        finally:
            self.level -= 1

    def expr(self, floor: int = 1) -> tuple[Expr | str, str]:
        return self.nested(lambda: self._expr(floor))

    def _expr(self, floor: int) -> tuple[Expr | str, str]:
        """Precedence climbing over PRECEDENCE; ``not`` binds between ``and`` and comparisons."""
        tok = self.peek()[1]
        if floor <= NOT_PRECEDENCE and self.take("not"):
            left = Unary("not", self.typed(lambda: self.expr(NOT_PRECEDENCE), "bool")), "bool"
        else:
            left = self.unary()
        while self.peek()[0] in ("op", "kw") and PRECEDENCE.get(op := self.peek()[1], 0) >= floor:
            self.i += 1
            rtok = self.peek()[1]
            left = self.combine(op, left, self.expr(PRECEDENCE[op] + 1), tok, rtok)
        return left

    def combine(self, op: str, left, right, ltok: str, rtok: str) -> tuple[Expr, str]:
        if op in COMPARISONS and {left[1], right[1]} & {"factor", "str"}:
            return self.state_test(op, left, right, ltok), "bool"
        want = "bool" if op in KEYWORDS else "num"
        for (_, typ), tok in ((left, ltok), (right, rtok)):
            if typ != want:
                raise self.fail(tok, f"expected a {TYPE_NAMES[want]}, got a {TYPE_NAMES[typ]}")
        node = Binary(op, left[0], right[0])
        if op in ARITHMETIC:
            if op == "/" and constant(right[0]) == 0:
                raise self.fail(rtok, "division by zero")
            if (value := constant(node)) is not None and not math.isfinite(value):
                raise self.fail(ltok, f"'{op}' gives a number out of range (not finite)")
        return node, ("num" if op in ARITHMETIC else "bool")

    def state_test(self, op: str, left, right, tok: str) -> StateIs:
        (factor, ft), (state, st) = sorted([left, right], key=lambda side: side[1] != "factor")
        if (ft, st) != ("factor", "str") or op not in ("==", "!="):
            raise self.fail(tok, "a factor can only be compared with a quoted state by == or !=")
        if not self.depth:
            raise self.fail(factor, "a factor comparison is time-wise: use it inside ever/always/first/months")
        states = tuple(self.factors[factor])
        if state not in states:
            raise self.fail(f'"{state}"', f"unknown state of factor '{factor}' (states: {', '.join(states)})")
        return StateIs(factor, state, states.index(state), op == "!=")

    def unary(self) -> tuple[Expr, str]:
        return self.nested(self._unary)

    def _unary(self) -> tuple[Expr, str]:
        if self.take("-"):
            node = self.typed(self.unary, "num")
            return (Num(-node.value) if isinstance(node, Num) else Unary("-", node)), "num"
        return self.primary()

    def primary(self) -> tuple[Expr | str, str]:
        kind, text = self.peek()
        if kind in ("num", "str", "name"):
            self.i += 1
        if kind == "num":
            if not math.isfinite(value := float(text)):
                raise self.fail(text, "number out of range (not a finite number)")
            return Num(value), "num"
        if kind == "str":
            return text[1:-1], "str"
        if kind == "name":
            return self.call(text) if self.peek()[1] == "(" else self.name_ref(text)
        if self.take("("):
            node = self.expr()
            self.expect(")")
            return node
        raise self.fail(text, "expected a number, a name, a function call or '('")

    def name_ref(self, text: str) -> tuple[Expr | str, str]:
        if text in self.factors:
            return text, "factor"
        if text not in self.series:
            factor = self.peek()[1] in ("==", "!=") and self.peek(1)[0] == "str"
            raise self.fail(text, f"unknown {'factor' if factor else 'series'} (series: "
                                  f"{', '.join(self.series)}; factors: {', '.join(self.factors)})")
        if not self.depth:
            raise self.fail(text, "a bare series is a path: use it inside ever/always/first/months, "
                                  "or use value(series, h)")
        return SeriesPath(text), "num"

    def call(self, fn: str) -> tuple[Expr, str]:
        self.expect("(")
        if fn in SERIES_FUNCTIONS:
            node, typ = SeriesFn(fn, self.series_arg(), self.horizon_arg(after=",")), "num"
        elif fn in PATH_FUNCTIONS and self.depth:
            node, typ = SeriesPath(self.series_arg(), fn), "num"
        elif fn in PATH_FUNCTIONS:
            raise self.fail(fn, "a path function is time-wise: use it inside ever/always/first/months")
        elif fn in TIME_FUNCTIONS:
            self.depth += 1
            cond = self.typed(self.expr, "bool")
            self.depth -= 1
            node = TimeFn(fn, cond, self.horizon_arg(after=","))
            typ = "bool" if fn in ("ever", "always") else "num"
        else:
            raise self.fail(fn, f"unknown function (known: {', '.join(FUNCTIONS)})")
        self.expect(")")
        return node, typ

    def series_arg(self) -> str:
        kind, text = self.peek()
        if kind != "name" or text not in self.series:
            raise self.fail(text, f"unknown series (series: {', '.join(self.series)})")
        self.i += 1
        return text

    def horizon_arg(self, after: str) -> int:
        self.expect(after)
        kind, text = self.peek()
        if kind != "num" or not text.isdigit() or int(text) < 1:
            raise self.fail(text, "the horizon must be an integer literal >= 1 (months)")
        if int(text) > self.horizon:
            raise self.fail(text, f"horizon {text} exceeds the scenario horizon {self.horizon}")
        self.i += 1
        return int(text)


def parse(text: str, *, series: Sequence[str], factors: Mapping[str, Sequence[str]],
          horizon: int, name: str = "<expr>") -> Expr:
    """Parse and type-check a predicate (a condition per path); raises ``PredicateError``."""
    p = _Parser(text, series, factors, horizon, name)
    node = p.typed(p.expr, "bool")
    if p.peek()[0] != "end":
        raise p.fail(p.peek()[1], "unexpected token")
    if depth(node) > MAX_DEPTH:                  # long chains: a + a + a ... nest to the left
        raise p.fail(p.toks[0][1], f"nested more than {MAX_DEPTH} levels deep")
    return node


def constant(expr: Expr) -> float | None:
    """The value of a predicate's number that involves no path (``2 * 3``), else None."""
    match expr:
        case Num(value):
            return value
        case Unary("-", operand):
            v = constant(operand)
            return None if v is None else -v
        case Binary(op, left, right) if op in ARITHMETIC:
            a, b = constant(left), constant(right)
            if a is None or b is None:
                return None
            try:
                return _OPS[op](a, b)
            except (ZeroDivisionError, OverflowError):
                return math.inf
    return None


def depth(expr: Expr) -> int:
    """Levels of the tree (iterative: safe on any tree)."""
    best, stack = 0, [(expr, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        stack += [(v, d + 1) for f in dataclasses.fields(node)
                  if dataclasses.is_dataclass(v := getattr(node, f.name))]
    return best


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
                return _OPS[op](a, b)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return _finite(_OPS[op](np.asarray(a, float), b), np.isfinite(a) & np.isfinite(b), op, env)
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
