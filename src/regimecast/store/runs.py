"""The run store: ``runs/<run_id>/`` with ``idata.nc`` and ``manifest.json``.

A run directory is written atomically (temporary sibling directory, then rename), so an
interrupted fit leaves only a hidden ``.tmp-*`` directory. ``manifest.json`` records the
SHA-256 of every file, and is sealed with the SHA-256 of each of its own records
(``integrity``); loading refuses a run whose files or records do not match, naming them.
The seal detects edits, not forgery: whoever can write the run can recompute it.

Files added to a complete run (a forecast) are staged in full, then committed by one atomic
write of a journal (``.pending-manifest.json``: the new manifest) and moved into place; a
command killed after the commit leaves the journal, and the next reader completes the move.
So a run always shows either its old files or its new ones, never a mix.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from regimecast.store import atomic
from regimecast.errors import RunError
from regimecast.store.workspace import SAFE_NAME_RULE, is_safe_name

if TYPE_CHECKING:
    import arviz as az

MANIFEST = "manifest.json"
PENDING = ".pending-manifest.json"
INTEGRITY = "integrity"
IDATA = "idata.nc"
PACKAGES = ("regimecast", "pymc", "pytensor", "arviz", "jax", "jaxlib", "numpyro", "nutpie", "numpy",
            "scipy", "pandas", "xarray", "h5netcdf")


@dataclass(frozen=True)
class Run:
    """A saved run: its directory, manifest and posterior."""

    path: Path
    manifest: dict
    idata: az.InferenceData

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def make_run_id(prior_name: str, fingerprint: dict, now: datetime | None = None) -> str:
    """``<UTC time>-<prior set>-<8 hex of the inputs' hash>``: the suffix is the same for the
    same model, priors, data, seed and sampler settings."""
    now = now or datetime.now(timezone.utc)
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:8]
    return f"{now:%Y%m%dT%H%M%SZ}-{prior_name}-{digest}"


def save_run(runs_dir: Path, run_id: str, idata: az.InferenceData, manifest: dict) -> Path:
    """Write ``runs_dir/run_id`` atomically; returns its path. Never overwrites."""
    if not is_safe_name(run_id):
        raise RunError(f"run id {run_id!r} is not a plain directory name ({SAFE_NAME_RULE}); nothing was written")
    final = Path(runs_dir) / run_id
    try:
        with atomic.directory(final) as tmp:
            idata.to_netcdf(str(tmp / IDATA), engine="h5netcdf")
            manifest = dict(manifest, run_id=run_id, files={IDATA: _sha256(tmp / IDATA)})
            (tmp / MANIFEST).write_text(_sealed(manifest))
    except OSError as exc:     # a full disk, a read-only folder, a twin run saved in the same second
        if isinstance(exc, FileExistsError) or exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise RunError(f"{final}: a run with this id already exists (same inputs, same second); "
                           "nothing was written") from exc
        raise RunError(f"cannot write run {final}: {exc.strerror or exc}"
                       f"{f' ({exc.filename})' if exc.filename else ''}; nothing was written") from exc
    return final


def add_files(path: Path, files: dict[str, Callable[[Path], None]], manifest_update: dict) -> dict:
    """Add (or replace) files of a complete run, atomically as a whole: each
    ``writer(tmp_path)`` writes one file into a hidden staging directory; the new manifest
    (their SHA-256, ``manifest_update`` merged in) is committed as the journal ``PENDING``;
    then the files and the manifest are moved into place and the journal removed. Interrupted
    before the commit, the run keeps its old files and manifest, all valid; after it, the next
    reader completes the move. One writer of a run at a time (``flock`` on the run
    directory). Returns the new manifest."""
    path = Path(path)
    with atomic.locked(path):
        _complete_pending(path)
        manifest = _read_verified(path)
        with atomic.temporary_directory(path, ".tmp-files.") as staging:
            try:
                digests = {}
                for name, writer in files.items():
                    writer(staging / name)
                    digests[name] = _sha256(staging / name)
                    _fsync(staging / name)
                manifest = dict(manifest, **manifest_update, files=dict(manifest.get("files", {}), **digests))
                atomic.write_text(path / PENDING, json.dumps({"staging": staging.name, "manifest": manifest},
                                                             default=str))
            except BaseException as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if isinstance(exc, OSError):       # a full disk, a read-only folder: nothing committed
                    raise RunError(f"cannot write to run {path}: {exc.strerror or exc}"
                                   f"{f' ({exc.filename})' if exc.filename else ''}; the run is unchanged") from exc
                raise
            _complete_pending(path)
    return manifest


def _complete_pending(path: Path) -> None:
    """Finish a committed :func:`add_files` (the journal ``PENDING`` exists): move each staged
    file into place (a file already moved is checked), write the manifest, drop the journal
    and the staging directory. Idempotent; call under the run's lock."""
    journal = path / PENDING
    if not journal.is_file():
        return
    try:
        pending = json.loads(journal.read_text(encoding="utf-8"))
        staging, manifest = pending["staging"], pending["manifest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{journal}: unreadable journal of an interrupted write ({exc}); "
                       f"{path / MANIFEST} and the files it lists are the run as it was before") from exc
    if not (is_safe_name(staging.lstrip(".")) and staging.startswith(".tmp-files.")):
        raise RunError(f"{journal}: field 'staging' = {staging!r} is not a staging directory of this run")
    files = manifest.get("files", {})
    for name, digest in files.items():
        if not is_safe_name(name):
            raise RunError(f"{journal}: field 'manifest.files' names {name!r}, not a file of the run directory")
        staged = path / staging / name
        if staged.is_file() and _sha256(staged) == digest:
            os.replace(staged, path / name)
    for name, digest in files.items():
        if not (path / name).is_file() or _sha256(path / name) != digest:
            raise RunError(f"{journal}: file {name} of an interrupted update is missing or damaged (staged in "
                           f"{staging}); the update cannot be completed")
    atomic.write_text(path / MANIFEST, _sealed(manifest))
    journal.unlink(missing_ok=True)
    shutil.rmtree(path / staging, ignore_errors=True)


def sweep_run(path: Path) -> list[tuple[Path, str]]:
    """Complete an interrupted commit of a run and remove its stale ``.tmp-*`` leftovers
    (:func:`regimecast.store.atomic.sweep`); a run another command is writing is left alone."""
    with atomic.locked(path, wait=False) as free:
        if not free:
            return []
        pending = (path / PENDING).is_file()
        _complete_pending(path)
        done = [(path / PENDING, "completed the interrupted update of the run")] if pending else []
        return done + atomic.sweep(path)


def resolve_run(runs_dir: Path, ref: str | Path) -> Path:
    """A run by path, by id, or by unique id prefix; ``latest`` is the newest complete run."""
    if not str(ref).strip():
        raise RunError("empty run reference: give a run id, a unique id prefix, a path or 'latest'")
    p = Path(ref)
    if (p / MANIFEST).is_file():
        return p
    runs = sorted(d for d in Path(runs_dir).glob("*") if (d / MANIFEST).is_file() and not d.name.startswith("."))
    if str(ref) == "latest":
        if not runs:
            raise RunError(f"no complete run in {runs_dir}")
        return runs[-1]
    hits = [d for d in runs if d.name.startswith(str(ref))]
    if len(hits) != 1:
        raise RunError(f"run '{ref}': {'no' if not hits else len(hits)} matching run(s) in {runs_dir}")
    return hits[0]


def load_manifest(path: Path) -> dict:
    """Read and verify a run's manifest: its records against its seal, its files against
    their SHA-256 (after completing a committed update, see :func:`add_files`)."""
    path = Path(path)
    if (path / PENDING).is_file():
        with atomic.locked(path):
            _complete_pending(path)
    with atomic.locked(path, shared=True) if path.is_dir() else contextlib.nullcontext():
        return _read_verified(path)


def _read_verified(path: Path) -> dict:
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise RunError(f"{path}: no {MANIFEST}; the run is incomplete or not a run directory")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{mpath}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise RunError(f"{mpath}: not a manifest (a JSON object)")
    _verify_seal(mpath, manifest)
    for name, digest in manifest.get("files", {}).items():
        if not is_safe_name(name):
            raise RunError(f"{mpath}: field 'files' names {name!r}, not a file of the run directory")
        f = path / name
        if not f.is_file():
            raise RunError(f"{path}: file {name} listed in the manifest is missing")
        if _sha256(f) != digest:
            raise RunError(f"{path}: {name} does not match the manifest (SHA-256 differs); refusing to load")
    if manifest.get("run_id") != path.name:
        raise RunError(f"{path}: manifest run_id {manifest.get('run_id')!r} does not match the directory name")
    return manifest


def load_run(path: Path) -> Run:
    import arviz as az                    # (imported here: every command sweeps runs/ at start)

    manifest = load_manifest(path)
    idata = az.from_netcdf(str(Path(path) / IDATA), engine="h5netcdf")
    return Run(Path(path), manifest, idata)


def _records(manifest: dict) -> dict:
    """SHA-256 of each record of a manifest as it reads back from JSON: one per field of
    each top-level table (``model.text``, ``sampler.seed``, ``files.idata.nc``) and one per
    other top-level field (``seed``), so that a mismatch names the field."""
    m = json.loads(json.dumps({k: v for k, v in manifest.items() if k != INTEGRITY}, default=str))
    return {k: {k2: _digest(v2) for k2, v2 in v.items()} if isinstance(v, dict) and v else _digest(v)
            for k, v in m.items()}


def _sealed(manifest: dict) -> str:
    """The manifest's JSON text with its integrity record."""
    return json.dumps(dict(manifest, **{INTEGRITY: _records(manifest)}), indent=2, sort_keys=True, default=str)


def _verify_seal(mpath: Path, manifest: dict) -> None:
    seal = manifest.get(INTEGRITY)
    if not isinstance(seal, dict):
        raise RunError(f"{mpath}: field '{INTEGRITY}' is missing: the manifest cannot be verified (a run written "
                       "before manifests were sealed, or an edited one); refusing to load. To vouch for a run "
                       f"you trust, call regimecast.store.runs.seal({str(mpath.parent)!r})")
    now, then = _flat(_records(manifest)), _flat(seal)
    for key in sorted(set(now) | set(then)):
        if now.get(key) != then.get(key):
            what = ("is not in its integrity record" if key not in then else
                    "is missing" if key not in now else "does not match its integrity record")
            raise RunError(f"{mpath}: field '{'.'.join(key)}' {what} (the manifest was changed after the run was "
                           "written); refusing to load")


def seal(path: Path) -> dict:
    """Seal the manifest of a run written before manifests carried their integrity record,
    after checking its files; a deliberate act of whoever vouches for the run."""
    path = Path(path)
    with atomic.locked(path):
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        manifest.pop(INTEGRITY, None)
        atomic.write_text(path / MANIFEST, _sealed(manifest))
        return _read_verified(path)


def _flat(records: dict) -> dict[tuple[str, ...], object]:
    return {(k, k2) if isinstance(v, dict) else (k,): v2
            for k, v in records.items() for k2, v2 in (v.items() if isinstance(v, dict) else [(None, v)])}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
