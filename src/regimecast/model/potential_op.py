"""The fit's potential as one PyTensor Op: ``value, gradient = op(theta, *static, *panels)``.

The value is :func:`regimecast.model.filter.potential` (the exact log marginal likelihood of every
panel plus the LKJ prior of the correlations) at the flat vector ``theta`` of the sampler's
variables; the gradient is computed in the same pass by :mod:`regimecast.model.likelihood` (numba).
The Op has three implementations, one per PyTensor backend:

* numba (nutpie's default backend here, and ``mode="NUMBA"``): the kernel is inlined into
  the compiled log density, no Python in the sampler's loop;
* Python (``perform``, the C backend): the same kernel called from Python;
* JAX (NumPyro, ``mode="JAX"``): the JAX kernels of :mod:`regimecast.model.kernels` and
  ``jax.value_and_grad``, an independent implementation of the same number.

The static arrays and the data are constant inputs of the graph, so one compiled kernel
serves every model and panel; PyTensor's numba cache key is the source of the kernel's package
and of this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.jax.dispatch import jax_funcify
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

from regimecast.model import likelihood
from regimecast.model.likelihood import DIMS, PanelArgs, StaticArgs, potential_and_grad, potential_sized

# PyTensor keys its numba cache by the Op's class, props and this version only, not by the
# kernel's code: hash the source so that an edited kernel is never served from a stale cache.
KERNEL_VERSION = int(hashlib.sha256(likelihood.SOURCES_DIGEST.encode() + Path(__file__).read_bytes()).hexdigest()[:15], 16)
N_STATIC, N_PANEL = len(StaticArgs._fields), len(PanelArgs._fields)


class PotentialOp(Op):
    """``(value (), gradient (n,)) = op(theta (n,), *StaticArgs, *PanelArgs)``.

    ``jax_fn`` (``theta -> (value, gradient)``, JAX) serves the JAX backend; ``key`` names the
    model and panels it was built for, so two ops are equal only when they compute the same
    function."""

    __props__ = ("key",)

    def __init__(self, key: str, jax_fn: Callable):
        self.key = key
        self.jax_fn = jax_fn

    def make_node(self, theta, *args):
        if len(args) != N_STATIC + N_PANEL:
            raise ValueError(f"PotentialOp takes theta and {N_STATIC + N_PANEL} arrays, got {len(args)}")
        theta = pt.as_tensor_variable(theta).astype("float64")
        inputs = [theta, *(pt.as_tensor_variable(a) for a in args)]
        return Apply(self, inputs, [pt.scalar(dtype="float64"), theta.type()])

    def perform(self, node, inputs, output_storage):
        theta, *args = inputs
        value, grad = potential_and_grad(theta, tuple(args[:N_STATIC]), tuple(args[N_STATIC:]))
        output_storage[0][0] = np.asarray(value, dtype="float64")
        output_storage[1][0] = grad

    def infer_shape(self, fgraph, node, input_shapes):
        return [(), input_shapes[0]]

    def L_op(self, inputs, outputs, output_grads):
        g_value, g_grad = output_grads
        if not isinstance(g_grad.type, DisconnectedType):
            return [grad_not_implemented(self, 0, inputs[0], "second derivatives of the potential"),
                    *(grad_undefined(self, i, x) for i, x in enumerate(inputs[1:], 1))]
        g_theta = pt.zeros_like(inputs[0]) if isinstance(g_value.type, DisconnectedType) else g_value * outputs[1]
        return [g_theta, *(grad_undefined(self, i, x, "data and structure are constants")
                           for i, x in enumerate(inputs[1:], 1))]


@register_funcify_default_op_cache_key(PotentialOp)
def _numba_potential(op, node, **kwargs):
    # the model's sizes are constants of the graph: the kernel is compiled for them (numba literals)
    P, O, D, C = (int(v) for v in node.inputs[1 + DIMS].data)

    @numba.njit
    def potential(theta, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15,
                  b0, b1, b2, b3, b4, b5, b6, b7, b8):
        value, grad = potential_sized(theta, (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13,
                                              a14, a15), (b0, b1, b2, b3, b4, b5, b6, b7, b8), P, O, D, C)
        return np.asarray(value), grad

    return potential, int(hashlib.sha256(f"{KERNEL_VERSION}-{P}-{O}-{D}-{C}".encode()).hexdigest()[:15], 16)


@jax_funcify.register(PotentialOp)
def _jax_potential(op, node=None, **kwargs):
    fn = op.jax_fn

    def potential(theta, *args):
        return fn(theta)

    return potential


assert N_STATIC == 16 and N_PANEL == 9, "update _numba_potential's signature with StaticArgs / PanelArgs"
