"""Prior sets (``priors/*.toml``): declarative, versioned, validated, resolved to arrays.

A prior file is a set of *blocks*. Each block has a fixed distribution family (the model's
structure decides it) and holds a ``default`` plus overrides keyed by dotted labels, e.g.
``"qe.balance_sheet"`` in ``[emission.mean]``. A file may ``extends = "baseline"`` another
in the same folder; its tables are merged over the parent's, key by key.
Every error names the file, the key and the value. Reading and merging are here; resolving
the blocks to arrays for one model is :mod:`regimecast.config.prior_blocks`.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from regimecast.config.prior_blocks import PriorArray, resolve
from regimecast.store import tomlfile
from regimecast.config.model_file import ModelConfig
from regimecast.errors import ConfigError
from regimecast.store.workspace import SAFE_NAME_RULE, is_safe_name

SCHEMA_VERSION = 1
@dataclass(frozen=True)
class PriorSet:
    """A validated prior file, merged with its parents; ``arrays`` are resolved for one model."""

    file: Path
    name: str
    description: str
    chain: tuple[str, ...]           # file names from the root ancestor to this file
    text: str                        # this file's text (parents' texts are in ``sources``)
    sources: dict[str, str]          # file name -> text, for every file in the chain
    sha256: str                      # hash over the chain's texts, in order
    doc: dict = field(repr=False)    # merged document
    arrays: dict[str, PriorArray] = field(repr=False)


def load_priors(path: str | Path, model: ModelConfig) -> PriorSet:
    """Read, merge (``extends``) and validate a prior file against ``model``."""
    path = Path(path)
    chain, texts, doc = _read_chain(path, seen=())
    digest = hashlib.sha256("".join(texts[n] for n in chain).encode()).hexdigest()
    arrays = resolve(path, doc, model)
    name = doc.get("name", path.stem)
    if not is_safe_name(name):
        raise ConfigError(path, "name", name, f"a prior set's name becomes part of run ids and paths: {SAFE_NAME_RULE}")
    return PriorSet(file=path, name=name, description=str(doc.get("description", "")),
                    chain=tuple(chain), text=texts[path.name], sources=texts, sha256=digest, doc=doc, arrays=arrays)


def _read_chain(path: Path, seen: tuple[str, ...]) -> tuple[list[str], dict[str, str], dict]:
    if not path.is_file():
        raise ConfigError(path, "<file>", str(path), "prior file not found")
    if path.name in seen:
        raise ConfigError(path, "extends", path.stem, f"circular extends: {' -> '.join(seen)}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "<file>", None, f"not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    try:
        doc = tomlfile.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "<file>", None, f"not valid TOML: {exc}") from exc
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(path, "schema_version", doc.get("schema_version"),
                          f"this regimecast reads prior schema_version = {SCHEMA_VERSION}")
    for k in doc:
        if k not in {"schema_version", "name", "description", "extends", "source", "initial", "transition", "emission"}:
            raise ConfigError(path, k, doc[k], "unknown key")
    parent = doc.pop("extends", None)
    if parent is None:
        return [path.name], {path.name: text}, doc
    if not is_safe_name(parent):
        raise ConfigError(path, "extends", parent, "expected the name of a prior file in the same folder "
                          f"(no path: {SAFE_NAME_RULE})")
    ppath = path.parent / (parent if parent.endswith(".toml") else f"{parent}.toml")
    if not ppath.is_file():
        raise ConfigError(path, "extends", parent, f"no prior file {ppath}")
    chain, texts, pdoc = _read_chain(ppath, seen + (path.name,))
    texts[path.name] = text
    return chain + [path.name], texts, _merge(pdoc, doc)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
