"""Fitting: NUTS (nutpie or NumPyro) from the annealed MAP start, post-sampling quantities of the
posterior, agreement with the Fed's history, and the warm start and revisions of a refit on new
months."""
