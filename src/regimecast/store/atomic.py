"""Atomic writes: write to a temporary path in the same directory, then rename.

A reader never sees a half-written file or directory; an interrupted write leaves only a
hidden ``.tmp-*`` (or ``.old-*``) path that never looks complete. Its writer holds an
``flock`` on it while it lives, so :func:`sweep` can tell a leftover of a killed command
(removed) from a write in progress (left alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from regimecast.errors import OutputError


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
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
    with temporary_directory(final.parent, f".tmp-{final.name}.") as tmp:
        try:
            yield tmp
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextlib.contextmanager
def temporary_directory(parent: Path, prefix: str) -> Iterator[Path]:
    """A new directory ``parent/<prefix>*``, locked (``flock``) while the block runs, so that
    :func:`sweep` leaves it alone; the caller renames or removes it."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    with locked(tmp):
        yield tmp


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
    """Hold an ``flock`` on the file or directory ``path`` for the block (released when the
    process dies, however it dies). Yields whether it was acquired: always with ``wait``;
    without, False when another process holds a conflicting lock."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


LEFTOVER_PREFIXES = (".tmp-", ".old-")
GRACE_S = 10.0   # an entry this young may be between its creation and its writer's lock


def sweep(folder: Path) -> list[tuple[Path, str]]:
    """The hidden ``.tmp-*`` and ``.old-*`` entries of ``folder`` that interrupted writes left:
    each one that no process holds locked and that nobody modified in the last ``GRACE_S``
    seconds is removed. Returns ``(path, what happened)`` for every such entry."""
    try:
        entries = sorted(p for p in Path(folder).iterdir() if p.name.startswith(LEFTOVER_PREFIXES))
    except OSError:
        return []
    return [(p, _remove_if_stale(p)) for p in entries]


def _remove_if_stale(p: Path) -> str:
    try:
        if time.time() - p.lstat().st_mtime < GRACE_S:
            return "left alone (modified seconds ago: a write may be in progress)"
        if p.is_symlink():
            p.unlink()
            return "removed (a link left by an interrupted write)"
        with locked(p, wait=False) as free:
            if not free:
                return "left alone (another command is writing it)"
            restored = _restore_aside(p)
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        return f"restored {restored} and removed the rest" if restored else "removed (left by an interrupted write)"
    except FileNotFoundError:
        return "removed by another command"
    except OSError as exc:
        return f"left by an interrupted write; could not remove it ({exc.strerror})"


def _restore_aside(p: Path) -> str | None:
    """A ``.old-<name>.*`` directory holding ``<name>``, whose place is empty: a swap was
    killed between its two renames; put the old directory back (it is complete)."""
    if not (p.name.startswith(".old-") and p.is_dir()):
        return None
    for child in p.iterdir():
        if p.name.startswith(f".old-{child.name}.") and not (p.parent / child.name).exists():
            os.rename(child, p.parent / child.name)
            return child.name
    return None


def replace_directory(out_dir: Path, files: Mapping[str, str], *, keep_others: bool) -> Path:
    """Write the rendered ``files`` ({name: text}) as the directory ``out_dir``: staged in a
    hidden ``.tmp-<name>.*`` sibling, then swapped in (the old directory renamed aside to
    ``.old-<name>.*``, the new one renamed into place, the old one deleted). With
    ``keep_others`` the old directory's other files are carried over. Any failure before the
    swap leaves a previous directory exactly as it was. Returns ``out_dir``. A full disk or a
    read-only folder is an :class:`OutputError` naming ``out_dir`` (not a raw ``OSError``)."""
    out_dir = Path(out_dir)
    try:
        return _replace_directory(out_dir, files, keep_others=keep_others)
    except OSError as exc:
        raise OutputError(f"cannot write {out_dir}: {exc.strerror or exc}"
                          f"{f' ({exc.filename})' if exc.filename else ''}; "
                          "a previous version there is unchanged") from exc


def _replace_directory(out_dir: Path, files: Mapping[str, str], *, keep_others: bool) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a directory; refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with temporary_directory(out_dir.parent, f".tmp-{out_dir.name}.") as staging:
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
    with temporary_directory(final.parent, f".old-{final.name}.") as graveyard:
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
