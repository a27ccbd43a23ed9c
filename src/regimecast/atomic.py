"""Atomic writes: write to a temporary path in the same directory, then rename.

A reader never sees a half-written file or directory; an interrupted write leaves only a
hidden ``.tmp-*`` path that never looks complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; rename it to ``final`` only if the block succeeds.

    Raises FileExistsError if ``final`` already exists (runs are never overwritten).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise FileExistsError(f"{final} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}.", dir=final.parent))
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_directory(out_dir: Path, files: Mapping[str, str], *, keep_others: bool) -> Path:
    """Write the rendered ``files`` ({name: text}) as the directory ``out_dir``: staged in a
    hidden ``.tmp-<name>.*`` sibling, then swapped in (the old directory renamed aside to
    ``.old-<name>.*``, the new one renamed into place, the old one deleted). With
    ``keep_others`` the old directory's other files are carried over. Any failure before the
    swap leaves a previous directory exactly as it was. Returns ``out_dir``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a directory; refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, text in files.items():
            write_text(staging / name, text)
        if keep_others and out_dir.is_dir():
            for other in out_dir.iterdir():
                if other.name not in files and not other.name.startswith("."):
                    (shutil.copytree if other.is_dir() else shutil.copy2)(other, staging / other.name)
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _swap_into_place(new: Path, final: Path) -> None:
    """Rename the complete directory ``new`` to ``final``, replacing an existing one.

    The old directory is renamed aside (into a hidden ``.old-*`` sibling) before the new one
    takes its name, and deleted only afterwards; if the second rename fails the old one is
    put back. Between the two renames ``final`` briefly does not exist (POSIX has no portable
    atomic exchange of two directories), but it is never incomplete.
    """
    if not final.exists():
        os.rename(new, final)
        _fsync_dir(final.parent)
        return
    graveyard = Path(tempfile.mkdtemp(prefix=f".old-{final.name}.", dir=final.parent))
    aside = graveyard / final.name
    os.rename(final, aside)
    try:
        os.rename(new, final)
    except BaseException:
        os.rename(aside, final)
        shutil.rmtree(graveyard, ignore_errors=True)
        raise
    _fsync_dir(final.parent)
    shutil.rmtree(graveyard, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
