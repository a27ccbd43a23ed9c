"""Storage: atomic writes, the workspace's paths, run directories (manifests, sealed files), the
forecast ledger (SQLite) and TOML reading. The bottom of the package: imports nothing of regimecast
but :mod:`regimecast.errors`."""
