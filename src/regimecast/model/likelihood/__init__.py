"""The fit's log density and its exact gradient in one compiled pass (numba).

:func:`regimecast.model.filter.potential` (JAX) defines what the sampler's potential is: the exact
log marginal likelihood of every panel plus the LKJ prior of the correlations. Its XLA
gradient costs milliseconds, nearly all of it per-operation overhead of small ops inside
``scan`` on CPU (jax-ml/jax issues 40150, 36799). This module computes the same number and
its gradient with respect to the sampler's variables in one numba function:

* forward filter over the factored joint state (policy x other factors), scaled;
* backward pass of scaled messages: the gradient of the log marginal with respect to the
  log emission densities is the smoothed marginal, with respect to each transition the
  two-slice marginal over it (the Fisher identity), so no tape is kept;
* emission gradients through the covariance, d log t / d Sigma = -Sigma^-1 / 2 +
  w Sigma^-1 r r' Sigma^-1 / 2 with w = (nu + n) / (nu + maha), accumulated per state and
  carried once to the Cholesky factors and scales (no differentiation of a Cholesky);
* the softmax of the policy transition logits, the parameter assembly of
  :func:`regimecast.model.kernels.assemble` and NumPyro's ``CorrCholeskyTransform`` with its
  log-Jacobian and the LKJ density, each with its reverse pass written out.

Speed (``benchmarks/likelihood_grad.py``): the model's sizes P, O, D, C are numba literals, so
the loops over 4 or 8 states compile to unrolled vector code; ``exp`` and ``log`` run as
vectorised array passes (:mod:`.vmath`); the emission passes put each missing-data pattern's
months innermost and contiguous; weighted sums over months are blocked products
(:func:`.linalg.products`). Python callers use :func:`potential_and_grad`, numba callers
:func:`potential_sized` with the sizes as constants (:mod:`regimecast.model.potential_op`).

Equal to the JAX potential and its ``jax.grad`` to rounding (``tests/test_likelihood.py``).
Shapes as in :mod:`regimecast.model.kernels`: T months, P policy states, O combinations of the
other factors, D series, C covariates; ``theta`` is the flat vector of the sampler's variables
(constrained scale, in :func:`regimecast.model.graph.variable_spec` order).
"""

import hashlib
import os
from pathlib import Path


def _sources_digest() -> str:
    """SHA-256 of this package's sources."""
    return hashlib.sha256(b"".join(f.read_bytes() for f in sorted(Path(__file__).parent.glob("*.py")))).hexdigest()


def _drop_stale_numba_cache(digest: str) -> None:
    """numba's on-disk cache checks each function's own file only: a cached caller keeps the old
    code of a callee edited in another module. So the package's cache goes as a whole when any
    of its sources changed (a stamp of their digest beside it); unwritable caches are left to
    numba's own fallback."""
    cache = Path(__file__).parent / "__pycache__"
    stamp = cache / "numba-sources.sha256"
    try:
        if stamp.is_file() and stamp.read_text() == digest:
            return
        for f in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        tmp = cache / f".numba-sources.{os.getpid()}.tmp"
        tmp.write_text(digest)
        tmp.replace(stamp)
    except OSError:
        pass


SOURCES_DIGEST = _sources_digest()
_drop_stale_numba_cache(SOURCES_DIGEST)

from regimecast.model.likelihood.args import PanelArgs, StaticArgs, offsets, panel_args, static_args, theta_of  # noqa: E402
from regimecast.model.likelihood.potential import DIMS, potential_and_grad, potential_sized, sized_kernel  # noqa: E402

assert StaticArgs._fields[DIMS] == "dims"

__all__ = ["SOURCES_DIGEST", "PanelArgs", "StaticArgs", "offsets", "panel_args", "potential_and_grad", "potential_sized",
           "sized_kernel", "static_args", "theta_of"]
