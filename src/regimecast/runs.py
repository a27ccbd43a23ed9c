"""The run store: ``runs/<run_id>/`` with ``idata.nc`` and ``manifest.json``.

A run directory is written atomically (temporary sibling directory, then rename), so an
interrupted fit leaves only a hidden ``.tmp-*`` directory. ``manifest.json`` records the
SHA-256 of every file; loading refuses a run whose files do not match it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import arviz as az

from regimecast import atomic
from regimecast.errors import RunError

MANIFEST = "manifest.json"
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
    final = Path(runs_dir) / run_id
    with atomic.directory(final) as tmp:
        idata.to_netcdf(str(tmp / IDATA), engine="h5netcdf")
        manifest = dict(manifest, run_id=run_id, files={IDATA: _sha256(tmp / IDATA)})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return final


def add_files(path: Path, files: dict[str, Callable[[Path], None]], manifest_update: dict) -> dict:
    """Add files to a complete run: each ``writer(tmp_path)`` writes one file, which is then
    renamed into place; last, the manifest is rewritten atomically with their SHA-256 and
    ``manifest_update`` merged in. Until that last step the run's manifest does not list the
    new files, so an interrupted forecast never looks complete. Returns the new manifest."""
    path = Path(path)
    manifest = load_manifest(path)
    digests = {}
    for name, writer in files.items():
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{name}.", dir=path)
        os.close(fd)
        try:
            writer(Path(tmp))
            digests[name] = _sha256(Path(tmp))
            os.replace(tmp, path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    manifest = dict(manifest, **manifest_update, files=dict(manifest.get("files", {}), **digests))
    atomic.write_text(path / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest


def resolve_run(runs_dir: Path, ref: str | Path) -> Path:
    """A run by path, by id, or by unique id prefix; ``latest`` is the newest complete run."""
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
    """Read and verify a run's manifest against its files (SHA-256)."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise RunError(f"{path}: no {MANIFEST}; the run is incomplete or not a run directory")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{mpath}: not valid JSON ({exc})") from exc
    for name, digest in manifest.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise RunError(f"{path}: file {name} listed in the manifest is missing")
        if _sha256(f) != digest:
            raise RunError(f"{path}: {name} does not match the manifest (SHA-256 differs); refusing to load")
    if manifest.get("run_id") != path.name:
        raise RunError(f"{path}: manifest run_id {manifest.get('run_id')!r} does not match the directory name")
    return manifest


def load_run(path: Path) -> Run:
    manifest = load_manifest(path)
    idata = az.from_netcdf(str(Path(path) / IDATA), engine="h5netcdf")
    return Run(Path(path), manifest, idata)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
