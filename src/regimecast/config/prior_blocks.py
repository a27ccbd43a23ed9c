"""Resolution of a prior file's blocks to arrays for one model: each block has a fixed
distribution family (the model's structure decides it) and holds a ``default`` plus
overrides keyed by dotted labels, e.g. ``"qe.balance_sheet"`` in ``[emission.mean]``. Every
error names the file, the key and the value. Files are read and merged by
:mod:`regimecast.config.priors`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from regimecast.config import prior_range
from regimecast.config.model_file import ModelConfig
from regimecast.errors import ConfigError

FAMILIES: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "HalfNormal": ("sigma",),
    "LogNormal": ("mu", "sigma"),
    "Beta": ("alpha", "beta"),
    "Gamma": ("alpha", "beta"),
    "Dirichlet": ("a",),
    "LKJ": ("eta",),
}
POSITIVE = {"sigma", "alpha", "beta", "a", "eta"}


@dataclass(frozen=True)
class PriorArray:
    """Parameters of one family over a labelled grid: ``params[name]`` has shape ``shape``."""

    dist: str
    dims: tuple[str, ...]
    coords: tuple[tuple[str, ...], ...]
    params: dict[str, np.ndarray] = field(repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords)


def resolve(path: Path, doc: dict, m: ModelConfig) -> dict[str, PriorArray]:
    fac = {f.name: f for f in m.factors}
    tf, cf = fac[m.transition_factor], fac[m.covariance_factor]
    others = [f for f in m.factors if f.name != m.transition_factor]
    mean_others = [f for f in m.factors if f.name != cf.name]
    obs = m.observed
    _allowed(path, "", doc, {"schema_version", "name", "description", "source", "initial", "transition", "emission"})
    init = _table(path, doc, "initial")
    trans = _table(path, doc, "transition")
    emis = _table(path, doc, "emission")
    _allowed(path, "initial", init, set(fac))
    _allowed(path, "transition", trans, {"switch", "covariates", "factors"} | {f.name for f in others})
    _allowed(path, "emission", emis, {"mean", "effects", "ar", "sd", "lkj", "scale", "nu"})
    out: dict[str, PriorArray] = {}
    for f in m.factors:
        out[f"initial.{f.name}"] = _block(path, f"initial.{f.name}", _table(path, init, f.name), "Dirichlet",
                                          [("state", f.states)])
    for f in others:
        out[f"transition.{f.name}"] = _block(path, f"transition.{f.name}", _table(path, trans, f.name), "Dirichlet",
                                             [("from", f.states), ("to", f.states)])
    out["transition.switch"] = _block(path, "transition.switch", _table(path, trans, "switch"), "Normal",
                                      [("from", tf.states), ("to", tf.states)], sep="->")
    covs = tuple(c.name for c in m.covariates)
    if covs:
        out["transition.covariates"] = _block(path, "transition.covariates", _table(path, trans, "covariates"),
                                              "Normal", [("to", tf.states), ("covariate", covs)])
    fstates = tuple(f"{f.name}.{s}" for f in others for s in f.states[1:])
    if fstates:
        out["transition.factors"] = _block(path, "transition.factors", _table(path, trans, "factors"), "Normal",
                                           [("factor_state", fstates), ("effect", ("stay", "enter")),
                                            ("to", tf.states)])
    out["emission.mean"] = _block(path, "emission.mean", _table(path, emis, "mean"), "Normal",
                                  [("state", cf.states), ("series", obs)])
    estates = tuple(f"{f.name}.{s}" for f in mean_others for s in f.states[1:])
    if estates:
        out["emission.effects"] = _block(path, "emission.effects", _table(path, emis, "effects"), "Normal",
                                         [("factor_state", estates), ("series", obs)])
    if m.ar_series:
        out["emission.ar"] = _block(path, "emission.ar", _table(path, emis, "ar"), "Beta", [("series", m.ar_series)])
    out["emission.sd"] = _block(path, "emission.sd", _table(path, emis, "sd"), "LogNormal",
                                [("state", cf.states), ("series", obs)])
    out["emission.lkj"] = _block(path, "emission.lkj", _table(path, emis, "lkj"), "LKJ", [])
    sstates = tuple(f"{f}.{s}" for f in m.scale_factors for s in fac[f].states[1:])
    if sstates:
        out["emission.scale"] = _block(path, "emission.scale", _table(path, emis, "scale"), "LogNormal",
                                       [("factor_state", sstates), ("series", obs)])
    if m.emission_family == "student_t":
        out["emission.nu"] = _block(path, "emission.nu", _table(path, emis, "nu"), "Gamma", [])
    for key, pa in out.items():
        _usable(path, key, pa, len(obs))
    return out


def _usable(path: Path, key: str, pa: PriorArray, lkj_dim: int) -> None:
    """Refuse the first element whose draws are non-finite, a point mass or on the bound of
    the support (:mod:`regimecast.config.prior_range`), naming its key and parameters."""
    for idx, problem in prior_range.problems(pa.dist, pa.params, lkj_dim).items():
        sep = "->" if key == "transition.switch" else "."
        label = sep.join(_labels(list(zip(pa.dims, pa.coords)), [idx])[0])
        raise ConfigError(path, f"{key}.{_quote(label)}" if label else key,
                          {p: float(v[idx]) for p, v in pa.params.items()}, problem)


def _block(path: Path, key: str, table: dict, family: str, dims: list[tuple[str, tuple[str, ...]]],
           sep: str = ".") -> PriorArray:
    """Resolve a block: ``default`` (a parameter table, or one per label of the last dim, or
    for Dirichlet a list / a table per label) then overrides keyed by the full dotted label."""
    shape = tuple(len(c) for _, c in dims)
    names = FAMILIES[family]
    arr = {p: np.full(shape, np.nan) for p in names}
    if family == "Dirichlet":
        _dirichlet(path, key, table, dims, arr["a"])
    elif not dims:
        _set(arr, (), _params(path, key, table, family))
    else:
        default = table.get("default")
        if default is None:
            pass
        elif isinstance(default, dict) and default and all(isinstance(v, dict) for v in default.values()) \
                and not set(default) & set(names) - {"dist"}:
            last = dims[-1][1]
            for lab, spec in default.items():
                if lab not in last:
                    raise ConfigError(path, f"{key}.default.{lab}", spec,
                                      f"unknown {dims[-1][0]}; one of: {', '.join(last)}")
                _set(arr, (Ellipsis, last.index(lab)), _params(path, f"{key}.default.{lab}", spec, family))
        else:
            _set(arr, (Ellipsis,), _params(path, f"{key}.default", default, family))
        for lab, spec in table.items():
            if lab == "default":
                continue
            _set(arr, _index(path, key, lab, dims, sep), _params(path, f"{key}.{_quote(lab)}", spec, family))
    if sep == "->":  # staying is the reference (logit 0): the diagonal takes no prior
        for a in arr.values():
            np.fill_diagonal(a, 1.0)
    for p, a in arr.items():
        if np.isnan(a).any():
            missing = [sep.join(lbl) for lbl in _labels(dims, np.argwhere(np.isnan(a)))]
            raise ConfigError(path, f"{key}.default", None,
                              f"no prior for {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; "
                              "give a default or an entry for each")
    return PriorArray(family, tuple(d for d, _ in dims), tuple(c for _, c in dims), arr)


def _dirichlet(path: Path, key: str, table: Any, dims, a: np.ndarray) -> None:
    """Dirichlet concentrations: a table ``{state = a, default = a}``; for a transition block
    one such table per from-state (or a ``default`` row)."""
    states = dims[-1][1]
    rows = [None] if len(dims) == 1 else list(dims[0][1])
    if len(dims) == 2:
        for lab in table:
            if lab not in rows and lab not in ("default", "dist"):
                raise ConfigError(path, f"{key}.{lab}", table[lab], f"unknown state; one of: {', '.join(rows)}")
    for r, row in enumerate(rows):
        sub = table if row is None else table.get(row, table.get("default"))
        rkey = key if row is None else f"{key}.{row}"
        if not isinstance(sub, dict):
            raise ConfigError(path, rkey, sub, "expected a table of concentrations, one per state")
        target = a if row is None else a[r]
        for lab, v in sub.items():
            if lab == "dist":
                if v != "Dirichlet":
                    raise ConfigError(path, f"{rkey}.dist", v, "this block takes Dirichlet priors")
            elif lab == "default":
                continue
            elif lab not in states:
                raise ConfigError(path, f"{rkey}.{lab}", v, f"unknown state; one of: {', '.join(states)}")
            else:
                target[states.index(lab)] = _positive(path, f"{rkey}.{lab}", v, "concentration")
        if "default" in sub:
            target[np.isnan(target)] = _positive(path, f"{rkey}.default", sub["default"], "concentration")


def _params(path: Path, key: str, spec: Any, family: str) -> dict[str, float]:
    if not isinstance(spec, dict):
        raise ConfigError(path, key, spec, f"expected a table of {family} parameters ({', '.join(FAMILIES[family])})")
    dist = spec.get("dist", family)
    if dist not in FAMILIES:
        raise ConfigError(path, f"{key}.dist", dist, f"unknown distribution; known: {', '.join(FAMILIES)}")
    if dist != family:
        raise ConfigError(path, f"{key}.dist", dist, f"this block takes {family} priors")
    names = FAMILIES[family]
    for k in spec:
        if k != "dist" and k not in names:
            raise ConfigError(path, f"{key}.{k}", spec[k], f"unknown parameter of {family}; expected {', '.join(names)}")
    out = {}
    for p in names:
        if p not in spec:
            raise ConfigError(path, f"{key}.{p}", None, f"{family} needs parameter '{p}'")
        v = spec[p]
        out[p] = _positive(path, f"{key}.{p}", v, p) if p in POSITIVE else _finite(path, f"{key}.{p}", v)
    return out


def _finite(path: Path, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(path, key, v, "expected a finite number")
    return float(v)


def _positive(path: Path, key: str, v: Any, what: str) -> float:
    x = _finite(path, key, v)
    if x <= 0:
        raise ConfigError(path, key, v, f"{what} must be positive")
    return x


def _set(arr: dict[str, np.ndarray], idx, params: dict[str, float]) -> None:
    for p, v in params.items():
        arr[p][idx] = v


def _index(path: Path, key: str, label: str, dims, sep: str) -> tuple[int, ...]:
    """Map a dotted label (``from->to`` for switch logits) to an index of the grid."""
    qkey = f"{key}.{_quote(label)}"
    parts = label.split(sep) if sep != "." else _split_dotted(label, dims)
    if len(parts) != len(dims):
        form = sep.join(f"<{d}>" for d, _ in dims)
        raise ConfigError(path, qkey, label, f"expected a key of the form {form}")
    idx = []
    for part, (dname, labels) in zip(parts, dims):
        if part not in labels:
            raise ConfigError(path, qkey, part, f"unknown {dname}; one of: {', '.join(labels)}")
        idx.append(labels.index(part))
    if sep == "->" and idx[0] == idx[1]:
        raise ConfigError(path, qkey, label, "staying is the reference (logit 0); give from != to")
    return tuple(idx)


def _split_dotted(label: str, dims) -> list[str]:
    """Split ``a.b.c`` where some labels themselves contain one dot (``ai.realised``); an
    unmatched part is returned as is (the caller names it)."""
    parts = label.split(".")
    out = []
    for _, labels in dims:
        if not parts:
            break
        n = 2 if len(parts) >= 2 and ".".join(parts[:2]) in labels else 1
        out.append(".".join(parts[:n]))
        parts = parts[n:]
    return out + parts


def _quote(label: str) -> str:
    return f'"{label}"' if ("." in label or "->" in label) else label


def _labels(dims, idxs) -> list[tuple[str, ...]]:
    return [tuple(dims[d][1][i] for d, i in enumerate(ix)) for ix in idxs]


def _table(path: Path, doc: dict, key: str) -> dict:
    v = doc.get(key, {})
    if not isinstance(v, dict):
        raise ConfigError(path, key, v, "expected a table")
    return v


def _allowed(path: Path, prefix: str, table: dict, allowed: set[str]) -> None:
    for k in table:
        if k not in allowed:
            raise ConfigError(path, f"{prefix}.{k}" if prefix else k, table[k],
                              f"unknown key; allowed: {', '.join(sorted(allowed))}")
