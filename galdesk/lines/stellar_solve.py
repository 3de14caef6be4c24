"""The linear parts of the stellar-continuum fit (:mod:`galdesk.lines.stellar`): template weights at fixed
kinematics."""

from __future__ import annotations

import numpy as np

from galdesk.lines.spectral import nnls_scaled

__all__ = ["solve_multiplicative"]


def solve_multiplicative(A_t, b, wt, L, n_iter: int = 30, E=None):
    """Weights w >= 0 and polynomial P = 1 + sum_j>=1 c_j L_j minimising |wt (b - (A_t w) P)|^2.

    Bounded Gauss-Newton on the bilinear problem (each step a bounded linear least-squares problem solved by
    ``scipy.optimize.lsq_linear``, halved until chi^2 drops), started from the plain NNLS weights; alternating
    least squares would need hundreds of passes here.
    """
    from scipy.optimize import lsq_linear

    K, m = A_t.shape[1], L.shape[1] - 1
    Ew = np.zeros((b.size, 0)) if E is None else E * wt[:, None]
    ne = Ew.shape[1]
    Aw = np.hstack([A_t * wt[:, None], Ew])
    Lw = L[:, 1:]
    bw = b * wt
    we = nnls_scaled(Aw, bw)
    w, e = we[:K], we[K:]
    Aw, Ew = Aw[:, :K], Aw[:, K:]
    c = np.zeros(m)

    def resid(w, c, e):
        return bw - (Aw @ w) * (1.0 + Lw @ c) - Ew @ e

    r = resid(w, c, e)
    chi2 = float(r @ r)
    for _ in range(n_iter):
        P = 1.0 + Lw @ c
        J = np.hstack([Aw * P[:, None], Lw * (Aw @ w)[:, None], Ew])
        cs = np.linalg.norm(J, axis=0)
        cs[cs == 0] = 1.0
        lb = np.concatenate([-w * cs[:K], np.full(m, -np.inf), -e * cs[K + m:]])
        ub = np.full(K + m + ne, np.inf)
        step = lsq_linear(J / cs, r, bounds=(lb, ub), method="bvls").x / cs
        t = 1.0
        for _ in range(10):
            w_new = np.clip(w + t * step[:K], 0, None)
            c_new = c + t * step[K:K + m]
            e_new = np.clip(e + t * step[K + m:], 0, None)
            r_new = resid(w_new, c_new, e_new)
            chi2_new = float(r_new @ r_new)
            if chi2_new <= chi2:
                break
            t *= 0.5
        else:
            break
        done = chi2 - chi2_new < 1e-8 * chi2
        w, c, e, r, chi2 = w_new, c_new, e_new, r_new, chi2_new
        if done:
            break
    coef = np.concatenate([[1.0], c])
    norm = float(np.median(L @ coef))  # put the level in the weights, the shape in the polynomial
    if norm > 0:
        coef, w = coef / norm, w * norm
    return (w, coef, r) if E is None else (w, coef, r, e)
