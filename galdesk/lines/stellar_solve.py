"""The linear parts of the stellar-continuum fit (:mod:`galdesk.lines.stellar`): template weights at fixed
kinematics."""

from __future__ import annotations

import numpy as np

from galdesk.lines.spectral import nnls_scaled

__all__ = ["solve_multiplicative", "free_basis", "nnls_free"]


def solve_multiplicative(A_t, b, wt, L, n_iter: int = 30, E=None):
    """Weights w >= 0 and polynomial P = 1 + sum_j>=1 c_j L_j minimising |wt (b - (A_t w) P)|^2.

    Bounded Gauss-Newton on the bilinear problem (each step a linear least-squares problem with the weights
    bounded at zero and the polynomial free, solved exactly as NNLS with the polynomial projected out,
    :func:`nnls_free`; halved until chi^2 drops), started from the plain NNLS weights; alternating least squares
    would need hundreds of passes here.
    """
    K, m = A_t.shape[1], L.shape[1] - 1
    Ew = np.zeros((b.size, 0)) if E is None else E * wt[:, None]
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
        # the step keeps w + step >= 0 and e + step >= 0: in u = w + step (and e + step), an NNLS problem
        Jn = np.hstack([Aw * P[:, None], Ew])
        base = np.concatenate([w, e])
        u, step_c, _ = nnls_free(Jn, r + Jn @ base, *free_basis(Lw * (Aw @ w)[:, None]))
        step = np.concatenate([u[:K] - w, step_c, u[K:] - e])
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


def free_basis(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis ``Q`` of the free columns ``F`` and the map ``G`` from ``Q^T y`` to the coefficients
    (``c = G Q^T y`` solves ``F c = y`` for ``y`` in their span), for :func:`nnls_free`: thin QR, or SVD when ``F``
    is rank-deficient (a zero column: a polynomial times a zero model), whose null directions get coefficient 0."""
    m = F.shape[1]
    if m == 0:
        return F, np.zeros((0, 0))
    Q, R = np.linalg.qr(F)
    d = np.abs(np.diag(R))
    if d.min() > 1e-12 * d.max():
        return Q, np.linalg.inv(R)
    U, sv, Vt = np.linalg.svd(F, full_matrices=False)
    keep = sv > 1e-12 * sv.max() if sv.size and sv.max() > 0 else np.zeros(sv.size, bool)
    return U[:, keep], Vt[keep].T / sv[keep]


def nnls_free(A: np.ndarray, b: np.ndarray, Q: np.ndarray, G: np.ndarray):
    """min |A x + F c - b| over x >= 0 and free (signed) c, with ``(Q, G)`` = :func:`free_basis` of ``F``.

    The free terms are solved exactly by projecting them out (variable projection of the linear least-squares
    problem): NNLS of the projected columns ``(I - Q Q^T) A`` against the projected ``b``, then ``c`` from what is
    left in the span of ``F``. The same solution as NNLS with each free column split into a ± pair (or as a bounded
    solver with the free ones unbounded), at a fraction of the cost. Returns (x, c, residual ``b - A x - F c``).
    """
    if Q.shape[1] == 0:
        x = nnls_scaled(A, b)
        return x, np.zeros(G.shape[0]), b - A @ x
    Ap = A - Q @ (Q.T @ A)
    bp = b - Q @ (Q.T @ b)
    x = nnls_scaled(Ap, bp)
    r = bp - Ap @ x
    c = G @ (Q.T @ (b - A @ x))
    return x, c, r
