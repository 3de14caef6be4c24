"""Text spectra: columns of wavelength, flux and optional error.

Every reader returns :class:`~galdesk.io.model.SpectrumData` with wavelength in Angstrom (float64, increasing), the
vacuum/air flag, ``ivar`` (0 where unknown or bad) and ``mask`` (True = do not use); all-NaN flux or zero length ->
ReadError (enforced centrally by :func:`galdesk.io.reading.check_spectrum`).

``text`` (priority 5) -- whitespace or comma separated columns ``wavelength flux [error]``, ``#`` comments
    A comment line (or a first non-numeric line) with as many names as columns names them: wavelength from
    ``wave/wavelength/lambda/lam/wl`` (``loglam`` -> 10**), flux from ``flux/f/fnu/flam``, errors from
    ``err/error/sigma/unc/noise/std/flux_err/e_flux/...`` (1-sigma), else ``ivar/invvar/inverse_variance``, else
    ``var/variance``; without names: columns 0, 1, 2. A units line such as ``# angstroms ...`` or
    ``nm``/``micron`` converts the wavelength. ``ivar = 1/err**2`` where ``err > 0``, else 0;
    ``meta["error_source"]`` names the column. If there is no error column or no error is finite and positive
    (``meta["errors_unusable"]``), ``ivar`` is 0 everywhere and ``meta["no_errors"] = True``: the mask then does
    *not* include ``ivar == 0``, and :func:`galdesk.io.reading.check_spectrum` estimates errors from the flux
    (:mod:`galdesk.io.noise`). Air unless a comment says vacuum (``meta["vacuum_assumed"]``). Other columns ->
    ``meta["columns"]``.
    A comment ``z = 0.0123`` / ``redshift: 0.0123`` (any case, ``=`` or ``:``) gives the redshift.
"""

from __future__ import annotations

import re

import numpy as np

from galdesk.io.formats.common import ivar_from_sigma, ivar_from_var, wave_unit_factor
from galdesk.io.model import SpectrumData
from galdesk.io.probe import Probe
from galdesk.io.registry import register_reader

__all__ = ["read_text_spectrum"]

_TEXT_SUFFIXES = {".txt", ".dat", ".csv", ".tsv", ".asc", ".ascii", ".spec", ".tab", ""}
_WAVE_NAMES = ("wavelength", "wave", "lambda", "lam", "wl", "wav", "loglam", "angstrom", "angstroms")
_FLUX_NAMES = ("flux", "f", "flam", "f_lambda", "fnu", "fluxes", "spec", "spectrum", "counts")
_ERR_NAMES = ("err", "error", "errors", "sigma", "sig", "unc", "uncertainty", "noise", "std", "stddev", "flux_err",
              "fluxerr", "flux_error", "err_flux", "error_flux", "e_flux", "eflux", "dflux", "flux_sigma", "flam_err",
              "e_flam")
_IVAR_NAMES = ("ivar", "invvar", "inv_var", "ivariance", "inverse_variance", "flux_ivar")
_VAR_NAMES = ("var", "variance", "flux_var")
_Z_COMMENT = re.compile(r"^(?:z|redshift)\s*[=:]\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:\s|$|,|;|/)",
                        re.IGNORECASE)
_NUM_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?$|^[+-]?(?:nan|inf)$", re.IGNORECASE)


def _split(line: str, comma: bool) -> list[str]:
    return [t.strip() for t in line.split(",")] if comma else line.split()


def _text_layout(text: str):
    """``(comma, names or None, header_lines, comment_lines)`` if ``text`` looks like a numeric table, else None."""
    lines = text.splitlines()
    comments: list[str] = []
    names = None
    header_lines = 0
    data_lines: list[str] = []
    for ln in lines:
        s = ln.strip()
        if not s:
            continue
        if s.startswith(("#", "%", ";", "!")):
            comments.append(s.lstrip("#%;! ").strip())
            continue
        data_lines.append(s)
        if len(data_lines) >= 4:
            break
    if not data_lines:
        return None
    comma = "," in data_lines[-1]
    first = _split(data_lines[0], comma)
    if not all(_NUM_RE.match(t) for t in first):
        names = [t.strip().strip('"').strip("'").lower() for t in first]
        header_lines = 1
        data_lines = data_lines[1:]
        if not data_lines:
            return None
    for d in data_lines[:-1] if len(data_lines) > 1 else data_lines:  # the last one may be cut by the 2880 head
        toks = _split(d, comma)
        if len(toks) < 2 or not all(_NUM_RE.match(t) for t in toks):
            return None
    ncol = len(_split(data_lines[0], comma))
    if names is None:
        for c in comments:
            toks = [t.lower() for t in (c.split(",") if comma else c.split())]
            if len(toks) == ncol and any(t in _WAVE_NAMES for t in toks):
                names = [t.strip() for t in toks]
                break
    if names is not None and len(names) != ncol:
        return None
    return comma, names, header_lines, comments


def _is_text_spectrum(probe: Probe) -> bool:
    if probe.is_fits or probe.suffix not in _TEXT_SUFFIXES:
        return False
    text = probe.text_head()
    if text is None:
        return False
    layout = _text_layout(text)
    if layout is None:
        return False
    names = layout[1]
    # a header row must name a wavelength column: otherwise it is a catalogue, not a spectrum
    return names is None or any(n in _WAVE_NAMES for n in names)


def _find(names, candidates) -> int | None:
    for c in candidates:
        if c in names:
            return names.index(c)
    return None


def _comment_lines(text: str) -> list[str]:
    """Every comment line of the file, without its comment mark (the head only saw the first 2880 bytes)."""
    return [ln.strip().lstrip("#%;! ").strip() for ln in text.splitlines()
            if ln.strip().startswith(("#", "%", ";", "!"))]


def _comment_redshift(comments: list[str]) -> float | None:
    """The redshift of a ``z = ...`` / ``redshift: ...`` comment line, or None."""
    for c in comments:
        m = _Z_COMMENT.match(c.strip())
        if m:
            return float(m.group(1))
    return None


def _data_table(text: str, comma: bool, header_lines: int) -> np.ndarray:
    """The numeric rows after the comment lines and the header row(s), float64 ``(n_rows, n_columns)``."""
    rows = []
    seen_header = 0
    for ln in text.splitlines():
        s = ln.strip()
        if not s or s.startswith(("#", "%", ";", "!")):
            continue
        if seen_header < header_lines:
            seen_header += 1
            continue
        toks = _split(s, comma)
        rows.append([float(t.replace("d", "e").replace("D", "E")) for t in toks])
    if not rows:
        raise ValueError("no data rows")
    ncol = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != ncol), None)
    if bad is not None:
        raise ValueError(f"row {bad + 1} has {len(rows[bad])} columns, expected {ncol}")
    return np.array(rows, dtype=np.float64)


def _column_roles(names: list[str] | None, ncol: int):
    """``(names, wave column, flux column, error column or None, error kind)``; kind is sigma, ivar or var."""
    if names is None:
        names = ["wavelength", "flux", "error"][:ncol] + [f"col{i}" for i in range(3, ncol)]
        return names, 0, 1, (2 if ncol >= 3 else None), "sigma"
    iw = _find(names, _WAVE_NAMES)
    jf = _find(names, _FLUX_NAMES)
    if iw is None:
        iw = 0
    if jf is None:
        jf = 1 if iw != 1 else 0
    ke, kind = _find(names, _ERR_NAMES), "sigma"
    if ke is None and _find(names, _IVAR_NAMES) is not None:
        ke, kind = _find(names, _IVAR_NAMES), "ivar"
    elif ke is None and _find(names, _VAR_NAMES) is not None:
        ke, kind = _find(names, _VAR_NAMES), "var"
    return names, iw, jf, ke, kind


def _units_line(comments: list[str], comma: bool, ncol: int, iw: int) -> tuple[float | None, str | None]:
    """``(factor to Angstrom, the line)`` from a comment line with as many tokens as columns whose wavelength token
    is a known unit; ``(None, None)`` when there is none."""
    for c in comments:
        toks = c.split(",") if comma else c.split()
        if len(toks) == ncol:
            f = wave_unit_factor(toks[iw])
            if f is not None and toks[iw].strip().lower() not in ("pixel", "pixels"):
                return f, c
    return None, None


def _ivar_column(table: np.ndarray, ke: int | None, kind: str) -> np.ndarray:
    """Inverse variance from the error column (0 everywhere without one)."""
    if ke is None:
        return np.zeros(table.shape[0])
    if kind == "ivar":
        return np.where(np.isfinite(table[:, ke]) & (table[:, ke] > 0), table[:, ke], 0.0)
    if kind == "var":
        return ivar_from_var(table[:, ke])
    return ivar_from_sigma(table[:, ke])


def _vacuum_from_comments(comments: list[str]) -> tuple[bool, bool]:
    """``(vacuum, vacuum_assumed)``: vacuum when a comment says so and none says air."""
    lowered = " ".join(comments).lower()
    vacuum = ("vacuum" in lowered or re.search(r"\bvac\b", lowered) is not None) and "air" not in lowered.split()
    return vacuum, not vacuum and "air" not in lowered.split()


def read_text_spectrum(probe: Probe) -> list[SpectrumData]:
    """Read a text spectrum (rules in the module docstring)."""
    path = probe.path
    text = path.read_text(encoding="utf-8", errors="replace")
    layout = _text_layout(text)
    if layout is None:
        raise ValueError("not a numeric table of wavelength, flux[, error]")
    comma, names, header_lines, _ = layout
    comments = _comment_lines(text)
    table = _data_table(text, comma, header_lines)
    ncol = table.shape[1]
    names, iw, jf, ke, kind = _column_roles(names, ncol)
    wave = table[:, iw]
    meta: dict = {"columns": {}}
    if names[iw] == "loglam":
        wave = 10.0 ** wave
    factor, units_line = _units_line(comments, comma, ncol, iw)
    if factor is not None:
        meta["units_line"] = units_line
        wave = wave * factor
    flux = table[:, jf]
    ivar = _ivar_column(table, ke, kind)
    no_errors = not (ivar > 0).any()
    if no_errors:
        meta["no_errors"] = True
        if ke is not None:
            meta["errors_unusable"] = f"column {names[ke]}: no finite positive value"
    else:
        meta["error_source"] = f"column {names[ke]} ({kind})"
    for k, nme in enumerate(names):
        if k not in (iw, jf, ke):
            meta["columns"][nme] = table[:, k]
    vacuum, vacuum_assumed = _vacuum_from_comments(comments)
    meta["vacuum_assumed"] = vacuum_assumed
    meta["column_names"] = names
    mask = ~np.isfinite(flux) if no_errors else ~(ivar > 0)
    return [SpectrumData(wavelength=wave, flux=flux, ivar=ivar, mask=mask, source=str(path), id=path.stem,
                         vacuum=vacuum, flux_unit="", redshift=_comment_redshift(comments),
                         header={"comments": comments}, meta=meta)]


register_reader("text", "spectrum", _is_text_spectrum, read_text_spectrum, priority=5)
