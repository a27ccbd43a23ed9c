"""Leftovers of interrupted writes in a workspace, reported and cleaned on every command.

A command killed while it writes (SIGKILL, power loss; Ctrl-C cleans up after itself)
leaves hidden ``.tmp-*`` or ``.old-*`` paths (:mod:`regimecast.store.atomic`) or a run's committed
but unfinished update (:func:`regimecast.store.runs.add_files`). :func:`sweep` finds them in the
output folders and their subfolders, completes the update, restores a directory set aside,
removes what no process holds, and says what it did with each.
"""

from __future__ import annotations

from pathlib import Path

from regimecast.store import atomic
from regimecast.store import runs
from regimecast.errors import RunError
from regimecast.store.workspace import Workspace


def sweep(ws: Workspace) -> list[str]:
    """One line per leftover found in ``runs/``, ``reports/``, the data cache and two levels
    of their subfolders (each run, report, backtest configuration), saying what was done."""
    found: list[tuple[Path, str]] = []
    for folder in (ws.runs, ws.reports, ws.cache):
        found += atomic.sweep(folder)
        for sub in _subfolders(folder):
            try:
                is_run = (sub / runs.MANIFEST).is_file() or (sub / runs.PENDING).is_file()
                found += runs.sweep_run(sub) if is_run else atomic.sweep(sub)
            except (OSError, RunError) as exc:
                found.append((sub, f"could not be checked for leftovers ({exc})"))
            for inner in _subfolders(sub):
                found += atomic.sweep(inner)
    return [f"{_shown(p, ws.root)}: {what}" for p, what in found]


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(d for d in folder.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith("."))
    except OSError:
        return []


def _shown(p: Path, root: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)
