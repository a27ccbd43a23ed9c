"""Configuration files: the model file (``models/*.toml``), prior sets (``priors/*.toml``),
thresholds (``models/diagnostics.toml``) and the defaults every command shares
(:mod:`regimecast.config.defaults`)."""
