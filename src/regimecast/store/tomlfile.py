"""TOML text -> dict, with nesting too deep for Python's parser reported as a syntax error.

``tomllib`` parses nested arrays and inline tables recursively: a file nested a few hundred
levels deep raised ``RecursionError`` (a traceback) instead of the file's error. Every TOML
file regimecast reads (model, priors, scenarios, diagnostics thresholds, a manifest's
scenario text) goes through :func:`loads`, so each caller's ``TOMLDecodeError`` handling names
the file.
"""

from __future__ import annotations

import tomllib
from typing import Any


MAX_DEPTH = 64
"""Deepest nesting of arrays and inline tables read (regimecast's own files use 3)."""


def nesting_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` in TOML values, outside strings and comments (table
    headers count 1, as one level)."""
    depth = deepest = i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                i += 2 if c == '"' and text[i] == "\\" else 1
            i += len(quote)
            continue
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return deepest


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``; nesting deeper than :data:`MAX_DEPTH` is a
    ``tomllib.TOMLDecodeError`` (checked before parsing: whether ``tomllib`` itself hits
    ``RecursionError`` depends on how deep the caller's stack already is)."""
    if nesting_depth(text) > MAX_DEPTH:
        raise tomllib.TOMLDecodeError(f"arrays or tables nested too deeply to read (more than {MAX_DEPTH} levels)")
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or tables nested too deeply to read") from None
