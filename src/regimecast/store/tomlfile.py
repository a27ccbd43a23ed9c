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


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``; too deep a nesting is a ``tomllib.TOMLDecodeError``."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or tables nested too deeply to read") from None
