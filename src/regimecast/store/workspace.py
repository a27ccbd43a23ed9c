"""Where a workspace keeps its files: models/, priors/, runs/, reports/ and the data cache."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "REGIMECAST_DATA_DIR"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SAFE_NAME_RULE = "letters, digits, '_', '-' and '.', starting with a letter or digit, at most 100 characters"


def is_safe_name(name: object) -> bool:
    """Whether ``name`` may become one component of a path in the workspace (a run id, a
    prior set's name, a file name from a manifest): never a separator, ``..`` or hidden."""
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Workspace:
    """A workspace root; every path the engine reads or writes hangs off it."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None = None) -> "Workspace":
        return cls(Path(root if root is not None else Path.cwd()).resolve())

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def priors(self) -> Path:
        return self.root / "priors"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def ledger(self) -> Path:
        """The forecast ledger (SQLite): every forecast and its later scores (``regimecast.store.ledger``)."""
        return self.runs / "ledger.sqlite"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def cache(self) -> Path:
        """The workspace data cache (``data/``), filled by ``regimecast data pull``."""
        return self.root / "data"

    def data_dir(self, explicit: str | os.PathLike[str] | None = None) -> Path:
        """Resolve the data directory: ``explicit`` (``--data-dir``), else $REGIMECAST_DATA_DIR,
        else the workspace cache."""
        if explicit is not None:
            return Path(explicit).resolve()
        env = os.environ.get(DATA_DIR_ENV)
        if env:
            return Path(env).resolve()
        return self.cache

    def model_file(self, name_or_path: str | os.PathLike[str]) -> Path:
        return _resolve(self.models, name_or_path)

    def prior_file(self, name_or_path: str | os.PathLike[str]) -> Path:
        return _resolve(self.priors, name_or_path)


def _resolve(folder: Path, name_or_path: str | os.PathLike[str]) -> Path:
    """A bare name like ``baseline`` means ``folder/baseline.toml``; anything else is a path."""
    p = Path(name_or_path)
    if p.suffix == "" and p.parent == Path("."):
        return folder / f"{p.name}.toml"
    return p if p.is_absolute() else (Path.cwd() / p)
