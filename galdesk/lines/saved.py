"""The fitted model of each complex, as stored in a journal record, so that views redraw it without refitting.

:meth:`galdesk.lines.results.SpectrumFit.to_dict` writes one :func:`model_record` per fitted complex under the
key ``"model"``; :func:`saved_models` reads them back as :class:`SavedModel` objects whose
:meth:`~SavedModel.model_curves` give the same curves as :meth:`galdesk.lines.results.ComplexFit.model_curves` of
the fit that was saved (the same code evaluates both; floats survive JSON exactly).

A record holds the best-fit parameter vector ``theta`` with the :class:`~galdesk.lines.model.Layout` needed to
evaluate it (parameter names and bounds, and per Gaussian its line, component, rest wavelength, the indices of its
flux, velocity and dispersion parameters, and its instrumental dispersion), the redshift, the fit window (vacuum
Angstrom) and, for fits on a whole-spectrum continuum model, that model around the window (``"stellar"``: vacuum
wavelengths and values, each a base64 string of little-endian float64, about 11 characters a pixel).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

from galdesk.lines import linelist as LL
from galdesk.lines.model import Layout, component_curves, template_at

__all__ = ["model_record", "SavedModel", "saved_models"]


def _floats(values) -> list:
    """JSON-safe floats (None for NaN or infinity)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).tolist()]


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(float)


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def model_record(cf) -> dict:
    """What is needed to evaluate a fitted complex again (JSON-friendly; see the module docstring).

    Parameters
    ----------
    cf : galdesk.lines.results.ComplexFit

    Returns
    -------
    dict
        ``z``, ``window``, ``vacuum``, ``names``, ``theta``, ``lower``, ``upper``, ``vary``, ``rest_ref``, ``cidx``,
        ``tidx``, ``gaussians`` (per Gaussian: ``line``, ``component``, ``kin``, ``rest``, ``flux``, ``velocity``,
        ``sigma``, ``sigma_add``, ``ratio`` (parameter indices, -1 for none), ``mult``, ``inst_sigma_kms``) and
        ``stellar`` (None without a continuum model).
    """
    lay = cf.layout
    stellar = None
    if cf.stellar is not None and lay.tidx >= 0:
        stellar = {"wave": _encode(cf.stellar[0]), "model": _encode(cf.stellar[1])}
    return {
        "z": float(cf.z),
        "window": _floats(cf.window),
        "vacuum": bool(cf.vacuum),
        "names": list(lay.names),
        "theta": _floats(cf.theta),
        "lower": _floats(lay.lower),
        "upper": _floats(lay.upper),
        "vary": [bool(v) for v in lay.vary],
        "rest_ref": float(lay.rest_ref),
        "cidx": _ints(lay.cidx),
        "tidx": int(lay.tidx),
        "gaussians": {
            "line": list(lay.g_line), "component": list(lay.g_comp), "kin": list(lay.g_kin),
            "rest": _floats(lay.rest), "flux": _ints(lay.fidx), "velocity": _ints(lay.vidx),
            "sigma": _ints(lay.sidx), "sigma_add": _ints(lay.sadd), "ratio": _ints(lay.ridx),
            "mult": _floats(lay.fmult), "inst_sigma_kms": _floats(cf.inst),
        },
        "stellar": stellar,
    }


@dataclass
class SavedModel:
    """A fitted complex read back from a journal record: enough to draw it, nothing to refit.

    Attributes
    ----------
    complex_name : str
    layout : Layout
    theta : ndarray (P,)
        Best-fit parameters, physical units.
    z : float
    inst : ndarray (G,)
        Instrumental dispersion at each Gaussian, km/s.
    window : (float, float)
        Fit window, vacuum Angstrom (as :attr:`ComplexFit.window <galdesk.lines.results.ComplexFit.window>`).
    vacuum : bool
        Whether the spectrum's wavelengths are vacuum (else air).
    stellar : (ndarray, ndarray) or None
        The whole-spectrum continuum model around the window: vacuum wavelength and values.
    """

    complex_name: str
    layout: Layout
    theta: np.ndarray
    z: float
    inst: np.ndarray
    window: tuple[float, float]
    vacuum: bool = True
    stellar: tuple | None = None

    @classmethod
    def from_record(cls, complex_name: str, rec: dict) -> "SavedModel":
        """Rebuild from a :func:`model_record` dict (after a JSON round trip)."""
        g = rec["gaussians"]

        def ints(key):
            return np.array(g[key], dtype=int)

        theta = _array(rec["theta"])
        layout = Layout(
            complex_name=complex_name, names=list(rec["names"]), init=theta.copy(), lower=_array(rec["lower"]),
            upper=_array(rec["upper"]), vary=np.array(rec["vary"], dtype=bool), g_line=list(g["line"]),
            g_comp=list(g["component"]), g_kin=list(g["kin"]), rest=_array(g["rest"]), fidx=ints("flux"),
            vidx=ints("velocity"), sidx=ints("sigma"), fmult=_array(g["mult"]),
            cidx=np.array(rec["cidx"], dtype=int), rest_ref=float(rec["rest_ref"]), sadd=ints("sigma_add"),
            tidx=int(rec["tidx"]), ridx=ints("ratio"),
        )
        st = rec.get("stellar")
        stellar = None if not st else (_decode(st["wave"]), _decode(st["model"]))
        return cls(complex_name=complex_name, layout=layout, theta=theta, z=float(rec["z"]),
                   inst=_array(g["inst_sigma_kms"]), window=(float(rec["window"][0]), float(rec["window"][1])),
                   vacuum=bool(rec.get("vacuum", True)), stellar=stellar)

    def model_curves(self, wave) -> dict[str, np.ndarray]:
        """Model components on a wavelength grid in the spectrum's own convention (vacuum or air), Angstrom;
        the same keys and values as :meth:`galdesk.lines.results.ComplexFit.model_curves`."""
        w = np.asarray(wave, dtype=float)
        w = w if self.vacuum else LL.air_to_vac(w)
        return component_curves(self.layout, self.theta, w, self.z, self.inst,
                                template_at(self.layout, self.stellar, w))


def saved_models(payload: dict | None) -> dict[str, SavedModel] | None:
    """The fitted complexes stored in a ``line_fit`` payload, in the record's order.

    Returns None when the record cannot be drawn from stored parameters: no payload, a record written before they
    were stored (no ``"model"``), or one whose stored models do not cover every fitted complex (``"fit"``).
    """
    if not payload:
        return None
    models, fitted = payload.get("model"), payload.get("fit") or {}
    if not isinstance(models, dict) or not fitted or set(models) != set(fitted):
        return None
    return {name: SavedModel.from_record(name, rec) for name, rec in models.items()}
