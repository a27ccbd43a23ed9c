"""Atomic writes and run directories: an interrupted write never looks complete."""

from __future__ import annotations

import pytest

from regimecast.store import atomic
from regimecast.errors import RunError
from regimecast.store.runs import resolve_run


def test_interrupted_directory_write_leaves_nothing_complete(tmp_path):
    final = tmp_path / "runs" / "r1"
    with pytest.raises(KeyboardInterrupt):
        with atomic.directory(final) as tmp:
            (tmp / "idata.nc").write_bytes(b"partial")
            raise KeyboardInterrupt
    assert not final.exists()
    assert list((tmp_path / "runs").iterdir()) == []
    with pytest.raises(RunError):
        resolve_run(tmp_path / "runs", "latest")


def test_directory_is_never_overwritten(tmp_path):
    with atomic.directory(tmp_path / "r") as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(FileExistsError):
        with atomic.directory(tmp_path / "r"):
            pass
    assert (tmp_path / "r" / "a").read_text() == "1"


def test_write_bytes_replaces_atomically(tmp_path):
    p = tmp_path / "f.csv"
    atomic.write_bytes(p, b"old")
    atomic.write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and [x.name for x in tmp_path.iterdir()] == ["f.csv"]
