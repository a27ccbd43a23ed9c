"""The PyMC graph of the regime-switching model.

Joint hidden state: the product of the factors, ordered (transition factor, other factors in
config order), C order, so ``k = p * O + o`` with ``p`` the policy state and ``o`` the
combination of the other factors' states. Discrete states are marginalised exactly by
:func:`regimecast.hmm_pytensor.forward_filter`.

Transition at month t (rows = from, columns = to):
    A_t[(p, o), (p', o')] = Q[o, o'] * softmax_j(L_t[o'])[p, p']
    L_t[o'][i, j] = alpha[i, j] + beta[j] . x_{t-1} + G_enter[o', j]   (i != j)
    L_t[o'][i, i] = G_stay[o', i]                                        (staying = reference)
with Q the product of the other factors' homogeneous transition matrices and G the summed
effects of the other factors' current (non-baseline) states.

Emission: y_t | (p, o) ~ Student-t_nu(m_t(p, o), S_o L_p L_p' S_o) (or Normal), with
m_t(p, o) = mu[p] + sum_f effect_f[o] + phi * y_{t-1} (AR series only), L_p the LKJ-Cholesky
factor of policy state p and S_o = diag(prod_f scale_f[o]). Missing cells are marginalised
(a sub-covariance per missing-data pattern), never imputed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from regimecast.config import ModelConfig
from regimecast.design import Design
from regimecast.hmm_pytensor import forward_filter, smoother
from regimecast.priors import PriorSet

NU_MIN = 2.0  # Student-t degrees of freedom are 2 + Gamma(...): finite variance needs nu > 2


@dataclass(frozen=True)
class StateSpace:
    """Index bookkeeping of the joint hidden state (no parameters)."""

    policy: str
    policy_states: tuple[str, ...]
    others: tuple[str, ...]                    # other factor names, config order
    other_states: tuple[tuple[str, ...], ...]  # their states
    combos: np.ndarray                         # (O, n_others) state index of each other factor

    @classmethod
    def from_config(cls, config: ModelConfig) -> "StateSpace":
        if config.covariance_factor != config.transition_factor:
            raise ValueError("the covariance factor and the transition factor must be the same factor")
        others = tuple(f for f in config.factors if f.name != config.transition_factor)
        combos = np.array(list(itertools.product(*[range(len(f.states)) for f in others])), dtype=int)
        return cls(config.transition_factor, config.factor(config.transition_factor).states,
                   tuple(f.name for f in others), tuple(f.states for f in others),
                   combos.reshape(len(combos), len(others)))

    @property
    def n_policy(self) -> int:
        return len(self.policy_states)

    @property
    def n_other(self) -> int:
        return len(self.combos)

    @property
    def n_joint(self) -> int:
        return self.n_policy * self.n_other

    def indicator(self, labels: tuple[str, ...]) -> np.ndarray:
        """(O, len(labels)) 0/1: combination o has factor f in state s, for labels ``"f.s"``."""
        out = np.zeros((self.n_other, len(labels)))
        for j, lab in enumerate(labels):
            f, s = lab.split(".", 1)
            fi = self.others.index(f)
            out[:, j] = self.combos[:, fi] == self.other_states[fi].index(s)
        return out

    def marginal_index(self, factor: str) -> np.ndarray:
        """(K,) state index of ``factor`` for each joint state k."""
        if factor == self.policy:
            return np.repeat(np.arange(self.n_policy), self.n_other)
        fi = self.others.index(factor)
        return np.tile(self.combos[:, fi], self.n_policy)


def coords(config: ModelConfig, design: Design, priors: PriorSet) -> dict[str, list]:
    """Named coordinates of every model dimension."""
    out: dict[str, list] = {"date": list(design.dates), "series": list(design.series),
                            "ar_series": list(config.ar_series), "covariate": list(design.covariate_names)}
    for f in config.factors:
        out[f.name] = list(f.states)
        out[f"{f.name}_from"] = list(f.states)
    pol = config.factor(config.transition_factor).states
    out["switch"] = [f"{i}->{j}" for i in pol for j in pol if i != j]
    for key, dim in (("transition.factors", "factor_state"), ("emission.effects", "effect_state"),
                     ("emission.scale", "scale_state")):
        if key in priors.arrays:
            out[dim] = list(priors.arrays[key].coords[0])
    out["effect"] = ["stay", "enter"]
    return out


def build_model(config: ModelConfig, priors: PriorSet, design: Design) -> pm.Model:
    """The PyMC model. Free variables are named after their prior blocks; deterministics:
    ``log_predictive`` (date), ``filtered_<factor>`` and ``smoothed_<factor>`` (date, factor)."""
    ss = StateSpace.from_config(config)
    pa = priors.arrays
    P, O, D = ss.n_policy, ss.n_other, len(design.series)
    with pm.Model(coords=coords(config, design, priors)) as model:
        # --- initial distribution and homogeneous factors ---------------------------------
        init = {f.name: pm.Dirichlet(f"initial_{f.name}", a=pa[f"initial.{f.name}"].params["a"], dims=f.name,
                                 shape=len(f.states))
                for f in config.factors}
        Q = pt.ones((1, 1))
        pi_other = pt.ones((1,))
        for f in ss.others:
            rows = pm.Dirichlet(f"transition_{f}", a=pa[f"transition.{f}"].params["a"], dims=(f"{f}_from", f),
                                 shape=pa[f"transition.{f}"].shape)
            Q = pt.linalg.kron(Q, rows)
            pi_other = pt.outer(pi_other, init[f]).ravel()
        pi0 = pt.outer(init[ss.policy], pi_other).ravel()                       # (K,)

        # --- time-varying policy transition ------------------------------------------------
        off = ~np.eye(P, dtype=bool)
        sw = pa["transition.switch"]
        switch = pm.Normal("switch_logit", mu=sw.params["mu"][off], sigma=sw.params["sigma"][off], dims="switch",
                           shape=int(off.sum()))
        alpha = pt.zeros((P, P))[np.nonzero(off)].set(switch)                   # (P, P), diag 0
        enter = pt.zeros((design.n_months, 1, P))
        if "transition.covariates" in pa:
            cp = pa["transition.covariates"].params
            beta = pm.Normal("covariate_effect", mu=cp["mu"], sigma=cp["sigma"], dims=(ss.policy, "covariate"),
                             shape=cp["mu"].shape)
            enter = enter + pt.dot(design.covariates, beta.T)[:, None, :]          # (T, 1, P)
        stay_o = pt.zeros((O, P))
        if "transition.factors" in pa:
            fp = pa["transition.factors"].params
            gamma = pm.Normal("factor_effect", mu=fp["mu"], sigma=fp["sigma"],
                              dims=("factor_state", "effect", ss.policy), shape=fp["mu"].shape)
            ind = ss.indicator(pa["transition.factors"].coords[0])
            stay_o = pt.dot(ind, gamma[:, 0, :])
            enter = enter + pt.dot(ind, gamma[:, 1, :])[None, :, :]                # (T, O, P)
        logits = (alpha[None, None] + enter[:, :, None, :]) * off + stay_o[None, :, :, None] * np.eye(P)
        ptrans = pt.special.softmax(logits, axis=-1)                            # (T, O, P, P')
        A = Q[None, None, :, None, :] * ptrans.dimshuffle(0, 2, "x", 3, 1)     # (T, P, O, P', O')
        A = A.reshape((design.n_months, ss.n_joint, ss.n_joint))

        # --- emissions -------------------------------------------------------------------
        mp = pa["emission.mean"].params
        mu = pm.Normal("mean", mu=mp["mu"], sigma=mp["sigma"], dims=(ss.policy, "series"), shape=(P, D))
        shift = pt.zeros((O, D))
        if "emission.effects" in pa:
            ep = pa["emission.effects"].params
            eff = pm.Normal("mean_effect", mu=ep["mu"], sigma=ep["sigma"], dims=("effect_state", "series"),
                            shape=ep["mu"].shape)
            shift = pt.dot(ss.indicator(pa["emission.effects"].coords[0]), eff)
        ar = pt.zeros((design.n_months, D))
        if config.ar_series:
            ap = pa["emission.ar"].params
            phi = pm.Beta("ar_coef", alpha=ap["alpha"], beta=ap["beta"], dims="ar_series", shape=len(config.ar_series))
            ar_idx = [design.series.index(s) for s in config.ar_series]
            ar = pt.zeros((D,))[ar_idx].set(phi)[None, :] * np.nan_to_num(design.ar_lag)
        log_scale = pt.zeros((O, D))
        if "emission.scale" in pa:
            sp = pa["emission.scale"].params
            ls = pm.Normal("log_scale", mu=sp["mu"], sigma=sp["sigma"], dims=("scale_state", "series"),
                           shape=sp["mu"].shape)
            log_scale = pt.dot(ss.indicator(pa["emission.scale"].coords[0]), ls)
        sd_sigma = pa["emission.sd"].params["sigma"]
        eta = float(pa["emission.lkj"].params["eta"][()])
        chol = pt.stack([pm.expand_packed_triangular(D, pm.LKJCholeskyCov(
            f"cov_{state}", n=D, eta=eta, sd_dist=pm.HalfNormal.dist(sigma=sd_sigma[p], shape=D),
            compute_corr=False)) for p, state in enumerate(ss.policy_states)])  # (P, D, D) lower
        nu = None
        if config.emission_family == "student_t":
            gp = pa["emission.nu"].params
            nu = NU_MIN + pm.Gamma("nu_excess", alpha=float(gp["alpha"][()]), beta=float(gp["beta"][()]))
        mean = mu[None, :, None, :] + shift[None, None, :, :] + ar[:, None, None, :]   # (T, P, O, D)
        loglik = _emission_loglik(design, mean, chol, log_scale, nu, (P, O)).reshape((design.n_months, ss.n_joint))

        # --- exact marginalisation of the hidden states -------------------------------------
        log_marginal, filtered, log_pred = forward_filter(pi0, A, loglik)
        pm.Potential("hmm_loglik", log_marginal)
        pm.Deterministic("log_predictive", log_pred, dims="date")
        smoothed = smoother(A, filtered)
        for f in config.factors:
            onehot = np.eye(len(f.states))[ss.marginal_index(f.name)]           # (K, S)
            pm.Deterministic(f"filtered_{f.name}", pt.dot(filtered, onehot), dims=("date", f.name))
            pm.Deterministic(f"smoothed_{f.name}", pt.dot(smoothed, onehot), dims=("date", f.name))
    return model


def _emission_loglik(design: Design, mean, chol, log_scale, nu, shape: tuple[int, int]):
    """log p(y_t | state) for every month and (policy, other) state: (T, P, O).

    ``mean`` (T, P, O, D), ``chol`` (P, D, D) lower Cholesky factors, ``log_scale`` (O, D),
    ``nu`` scalar or None (Normal). Each missing-data pattern uses the Cholesky factor of its
    observed sub-covariance.
    """
    T = design.n_months
    out = pt.zeros((T, *shape))
    cov = pt.matmul(chol, chol.mT)                                              # (P, D, D)
    for cols, months in design.patterns:
        n = len(cols)
        if n == 0:
            continue
        y = design.y[np.ix_(months, cols)]                                       # (Tg, n)
        s = pt.exp(log_scale[:, cols])                                           # (O, n)
        r = (y[:, None, None, :] - mean[months][:, :, :, cols]) / s[None, None]  # (Tg, P, O, n)
        Lg = pt.linalg.cholesky(cov[:, cols][:, :, cols])                        # (P, n, n)
        Linv = pt.linalg.solve_triangular(Lg, pt.eye(n)[None], lower=True)       # (P, n, n)
        z = pt.matmul(Linv[None, :, None], r[..., None])[..., 0]                  # (Tg, P, O, n)
        maha = pt.sum(z**2, axis=-1)                                             # (Tg, P, O)
        logdet = pt.sum(pt.log(pt.diagonal(Lg, axis1=-2, axis2=-1)), axis=-1)[:, None] \
            + pt.sum(log_scale[:, cols], axis=-1)[None, :]                      # (P, O)
        if nu is None:
            lp = -0.5 * n * np.log(2 * np.pi) - logdet[None] - 0.5 * maha
        else:
            lp = (pt.gammaln((nu + n) / 2) - pt.gammaln(nu / 2) - 0.5 * n * pt.log(nu * np.pi)
                  - logdet[None] - 0.5 * (nu + n) * pt.log1p(maha / nu))
        out = out[months].set(lp)
    return out
