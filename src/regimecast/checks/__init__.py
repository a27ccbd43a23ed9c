"""Review of a fit: the convergence verdict (fail checks), posterior predictive checks, LOO-PIT,
the robust LOO of high Pareto-k months, the review's verdict (pass / warn / fail) and model
comparison."""
