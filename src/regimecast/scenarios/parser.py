"""The scenario predicate language's tokenizer and recursive-descent parser: text -> the
type-checked tree of :mod:`regimecast.scenarios.predicates` (never ``eval``). Precedence,
lowest first: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``, unary minus."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence

from regimecast.scenarios.predicates import (ARITHMETIC, COMPARISONS, FUNCTIONS, KEYWORDS, MAX_DEPTH, MAX_TOKENS,
                                             NOT_PRECEDENCE, OPERATORS, PATH_FUNCTIONS, PRECEDENCE, SERIES_FUNCTIONS,
                                             TIME_FUNCTIONS, TYPE_NAMES, Binary, Expr, Num, PredicateError,
                                             SeriesFn, SeriesPath, StateIs, TimeFn, Unary)

_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
    |(?P<str>"[^"\n]*")|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op><=|>=|==|!=|[<>()+\-*/,]))""", re.X)
IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


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
                return OPERATORS[op](a, b)
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
