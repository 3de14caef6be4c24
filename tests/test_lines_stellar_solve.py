"""The linear solves of the stellar continuum (galdesk.lines.stellar_solve) against reference solvers, on the
matrices real spectra give: bundled templates at an SDSS galaxy's rest wavelengths, weighted by its noise."""

from __future__ import annotations

import numpy as np
import pytest
from lines_helpers import read_sdss
from numpy.polynomial import legendre
from scipy.optimize import lsq_linear, nnls

from galdesk.lines.spectral import mask_pixels
from galdesk.lines.stellar import fit_stellar_continuum, load_templates
from galdesk.lines.stellar_solve import free_basis, nnls_free, solve_multiplicative

#: an H II galaxy (young stars), a red galaxy, a Seyfert 2 and a broad-line AGN of ../shared/data
SPECTRA = ["spec-1722-53852-0175", "spec-0266-51602-0013", "spec-0266-51602-0638", "1237680240907518081"]


def problem(shared_data, name, degree=4, shift=1.0):
    """(weighted templates, weighted polynomial, weighted flux, weights, Legendre basis, templates) on the good
    continuum pixels of a real spectrum; ``shift`` stretches the templates' wavelengths (another velocity)."""
    spec = read_sdss(shared_data / "spectra" / "sdss" / f"{name}.fits")
    tpl = load_templates()
    rest = spec.wavelength / (1 + spec.redshift) / shift
    pix = (spec.ivar > 0) & (rest > tpl.lam[0] + 20) & (rest < tpl.lam[-1] - 20) & \
        ~mask_pixels(spec.wavelength, spec.redshift, 450.0)
    T = np.array([np.interp(rest[pix], tpl.lam, f) for f in tpl.flux]).T
    wt = np.sqrt(spec.ivar[pix])
    x = np.linspace(-1, 1, pix.sum())
    L = legendre.legvander(x, degree)
    return T * wt[:, None], L * wt[:, None], spec.flux[pix] * wt, wt, L, T


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("name", SPECTRA)
@pytest.mark.parametrize("shift", [1.0, 1.0004])
def test_nnls_with_free_polynomial_equals_the_split_nnls_and_a_bounded_solver(shared_data, name, shift):
    A, F, b, *_ = problem(shared_data, name, shift=shift)
    K = A.shape[1]
    x, c, r = nnls_free(A, b, *free_basis(F))
    # reference 1: the classic trick, each free column split into a non-negative pair
    M = np.hstack([A, F, -F])
    s = np.linalg.norm(M, axis=0)
    z = nnls(M / s, b, maxiter=50 * M.shape[1])[0] / s
    # reference 2: a bounded least-squares solver with the polynomial unbounded
    lb = np.concatenate([np.zeros(K), np.full(F.shape[1], -np.inf)])
    cs = np.linalg.norm(np.hstack([A, F]), axis=0)
    y = lsq_linear(np.hstack([A, F]) / cs, b, bounds=(lb, np.inf), method="bvls", tol=1e-14).x / cs
    assert np.all(x >= 0) and np.count_nonzero(x) >= 1
    assert rel(x, z[:K]) < 1e-8 and rel(c, z[K:K + F.shape[1]] - z[K + F.shape[1]:]) < 1e-8
    assert rel(x, y[:K]) < 1e-8 and rel(c, y[K:]) < 1e-8
    assert rel(r, b - A @ x - F @ c) < 1e-10
    assert abs(r @ r / ((b - M @ z) @ (b - M @ z)) - 1) < 1e-12


def test_a_rank_deficient_free_part_gets_zero_coefficients_on_its_null_directions(shared_data):
    A, F, b, *_ = problem(shared_data, SPECTRA[1])
    F2 = np.hstack([F, np.zeros((F.shape[0], 1)), F[:, :1]])  # a zero column and a repeated one
    x, c, r = nnls_free(A, b, *free_basis(F2))
    x0, c0, r0 = nnls_free(A, b, *free_basis(F))
    assert rel(x, x0) < 1e-8 and rel(r, r0) < 1e-10
    assert c[-2] == 0 and abs(c[0] - c[-1]) < 1e-8 * np.max(np.abs(c0))
    assert rel(F2 @ c, F @ c0) < 1e-8


@pytest.mark.parametrize("name", SPECTRA[:3])
def test_multiplicative_solve_is_optimal(shared_data, name):
    """Karush-Kuhn-Tucker conditions of min |wt (b - (T w) P)|, w >= 0, P = 1 + sum c_j L_j at the solution, and no
    lower chi^2 from a general bounded optimiser started there."""
    from scipy.optimize import least_squares

    A, _, bw, wt, L, T = problem(shared_data, name, degree=8)
    b = bw / wt
    w, coef, r = solve_multiplicative(T, b, wt, L)
    K = T.shape[1]
    P = L @ coef
    assert rel(r, bw - (A @ w) * P) < 1e-10
    # gradient of chi^2/2: zero along the polynomial (its scale fixed by coef[0]) and the weights in use, >= 0
    # along the unused ones
    J = np.hstack([A * P[:, None], L[:, 1:] * (T @ w * wt)[:, None] * coef[0]])
    g = -J.T @ r
    scale = np.linalg.norm(J, axis=0) * np.linalg.norm(r)
    gs = g / scale  # cosines between the residual and each direction; the solve stops at d(chi^2) < 1e-8 chi^2
    assert np.all(np.abs(gs[K:]) < 1e-4)
    assert np.all(np.abs(gs[:K][w > 0]) < 1e-4) and np.all(gs[:K][w == 0] > -1e-4)

    def resid(p):
        return bw - (A @ p[:K]) * (L @ np.concatenate([[coef[0]], p[K:]]))

    ref = least_squares(resid, np.concatenate([w, coef[1:]]), bounds=(np.concatenate([np.zeros(K), np.full(
        L.shape[1] - 1, -np.inf)]), np.inf), method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert r @ r <= 2 * ref.cost * (1 + 1e-8)


def test_fit_on_real_spectra_agrees_with_its_own_solve(shared_data):
    """The fitted model is what the solves give: the continuum of a real galaxy is positive where fitted and the
    reported chi^2 matches its residuals."""
    spec = read_sdss(shared_data / "spectra" / "sdss" / f"{SPECTRA[1]}.fits")
    st = fit_stellar_continuum(spec)
    u = st.used
    chi2 = float(np.sum((spec.flux[u] - st.model[u]) ** 2 * spec.ivar[u]))
    assert np.all(st.model[u] > 0)
    assert 0.5 < chi2 / st.ndata < 3 and abs(chi2 / (st.chi2nu * st.ndata) - 1) < 0.02
