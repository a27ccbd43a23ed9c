"""The model: JAX kernels (filter, smoother, potential), the NumPy reference filter, the numba
likelihood and its PyTensor Op, the specification of the sampler's variables (no PyMC), the PyMC
graph, the design matrices and prior draws."""
