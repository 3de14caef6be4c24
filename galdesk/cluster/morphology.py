"""Non-parametric morphology of every cut-out with statmorph (Rodriguez-Gomez et al. 2019), stored as result
``"morphology"`` and usable as a feature set for clustering (``model="morphology"``).

Per cut-out, on the working-size planes the project stores (what every other feature set sees; the source files
are not needed):

1. each band's sky is the median of the outer 2-pixel border, subtracted; its noise sigma is 1.4826 times the
   border's median absolute deviation (the border's standard deviation where that is 0, as on a clipped 8-bit
   sky);
2. the measured band is the middle one of three (the SDSS r band of a gri JPEG, its green plane), else the first;
   it is smoothed by a Gaussian of 1 px and segmented with photutils ``detect_sources`` at
   :data:`THRESHOLD_SIGMA` sigma above the sky (at least :data:`MIN_PIXELS` connected pixels, no deblending);
   the segment under the stamp centre is kept, or the one nearest to it;
3. ``statmorph.source_morphology(image, segmap, weightmap=...)``: no gain is known (JPEG planes are 8-bit
   stretched values, and the stacks carry none), so the weight map is the sky sigma everywhere, i.e. the
   background-limited noise, which statmorph documents as the "sigma image"; it only weighs the Sérsic fit and
   the S/N per pixel;
4. colour inside that segment: ``-2.5 log10(F_blue / F_red)`` of the sky-subtracted band sums, blue and red being
   the first and last band, except the JPEG planes ``r, g, b``, taken as ``b, g, r`` so that both read as a
   blue-minus-red colour (for an SDSS gri composite about g - i). For JPEGs these are sums of asinh-stretched
   pixel values, not calibrated magnitudes.

A cut-out without a source near its centre, or on which statmorph raises, gets NaN and a problem naming the
object; the others go on. statmorph's own flag (0 good, 1 suspect, 2 bad, 4 catastrophic: all NaN) is kept as
``morph_flag`` (-1: not measured), its Sérsic-fit flag as ``morph_sersic_flag``.

statmorph and photutils are imported inside the functions that use them; importing this module is cheap.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from galdesk.project import as_project
from galdesk.project.results import load_morphology
from galdesk.tasks import NullContext, TaskContext

__all__ = ["is_morphology", "MORPHOLOGY", "MORPH_COLUMNS", "FLAG_COLUMNS", "THRESHOLD_SIGMA", "MIN_PIXELS",
           "measure_cutout", "measure_chunk", "measure_stack", "measure_morphology", "morphology_features",
           "FEATURE_NAMES", "colour_bands", "PARALLEL_MIN"]

MORPHOLOGY = "morphology"          # the result's name, and the feature model name of the clustering
THRESHOLD_SIGMA = 2.0              # segmentation threshold above the sky, in sky sigma (of the unsmoothed band)
MIN_PIXELS = 5                     # smallest segment
PARALLEL_MIN = 32                  # fewer cut-outs than this are measured in this process
_CHUNK = 8                         # cut-outs per worker task

#: float columns: name -> (unit, description); all measured on the working-size planes of the project
MORPH_COLUMNS = {
    "morph_gini": (None, "Gini coefficient of the pixel fluxes (statmorph; Lotz et al. 2004)"),
    "morph_m20": (None, "M20: log of the second moment of the brightest 20% of the light over the total "
                        "(statmorph; Lotz et al. 2004)"),
    "morph_c": (None, "concentration 5 log10(r80/r20) (statmorph; Conselice 2003)"),
    "morph_a": (None, "180-degree rotational asymmetry, sky-corrected (statmorph; Conselice 2003)"),
    "morph_s": (None, "smoothness (clumpiness), sky-corrected (statmorph; Conselice 2003)"),
    "morph_sersic_n": (None, "Sersic index of a single 2-D Sersic fit (statmorph); without PSF; JPEG: fit to the "
                             "asinh-stretched image"),
    "morph_rhalf": ("pix", "circular half-light radius (statmorph rhalf_circ) in pixels of the project's working "
                           "size"),
    "morph_q": (None, "axis ratio 1 - ellipticity (statmorph ellipticity_asymmetry)"),
    "morph_color": ("mag", "-2.5 log10(F_blue/F_red) inside the source's segment (first/last band; JPEG b/r planes, "
                           "about g - i): for JPEGs a ratio of stretched pixel values, not calibrated magnitudes"),
}
#: integer columns: statmorph's flags (0 good, 1 suspect, 2 bad, 4 catastrophic; -1 not measured)
FLAG_COLUMNS = {
    "morph_flag": "statmorph flag: 0 good, 1 suspect, 2 bad, 4 catastrophic; -1 not measured",
    "morph_sersic_flag": "statmorph Sersic-fit flag: 0 good, 1 suspect, 2 bad, 4 catastrophic; -1 not measured",
}
#: the clustering's features: the float columns, with the half-light radius as log10 (its spread is by factors)
FEATURE_NAMES = ["morph_gini", "morph_m20", "morph_c", "morph_a", "morph_s", "morph_sersic_n", "log10_morph_rhalf",
                 "morph_q", "morph_color"]
_N = len(MORPH_COLUMNS)


def is_morphology(model) -> bool:
    """True if ``model`` names the stored morphology (``"morphology"``) rather than a network."""
    return isinstance(model, str) and model.strip().lower() == MORPHOLOGY


def colour_bands(bands: list[str]) -> tuple[int, int] | None:
    """Plane indices ``(blue, red)`` of the colour for a cut-out with these band names, None for one band."""
    if len(bands) < 2:
        return None
    if [b.strip().lower() for b in bands] == ["r", "g", "b"]:
        return 2, 0
    return 0, len(bands) - 1


def _border(img: np.ndarray) -> np.ndarray:
    b = max(1, min(2, img.shape[-1] // 16))
    return np.concatenate([img[:b].ravel(), img[-b:].ravel(), img[b:-b, :b].ravel(), img[b:-b, -b:].ravel()])


def _sky(img: np.ndarray) -> tuple[float, float]:
    """Median and robust sigma of the border of one plane (the standard deviation where the MAD is 0)."""
    border = _border(img)
    border = border[np.isfinite(border)]
    if border.size < 8:
        return float("nan"), float("nan")
    med = float(np.median(border))
    sigma = 1.4826 * float(np.median(np.abs(border - med)))
    if not sigma > 0:
        sigma = float(np.std(border))
    return med, sigma


def _segment(x: np.ndarray, sigma: float) -> np.ndarray | None:
    """Boolean map of the segment of the central source, or None when nothing is detected."""
    import inspect  # noqa: PLC0415

    from astropy.convolution import Gaussian2DKernel, convolve  # noqa: PLC0415
    from photutils.segmentation import detect_sources  # noqa: PLC0415

    smooth = convolve(x, Gaussian2DKernel(1.0), boundary="extend")
    npix = "n_pixels" if "n_pixels" in inspect.signature(detect_sources).parameters else "npixels"
    seg = detect_sources(smooth, THRESHOLD_SIGMA * sigma, **{npix: MIN_PIXELS})
    if seg is None:
        return None
    data = np.asarray(seg.data)
    cy, cx = (data.shape[0] - 1) / 2, (data.shape[1] - 1) / 2
    label = data[int(round(cy)), int(round(cx))]
    if label == 0:
        yy, xx = np.nonzero(data)
        k = int(np.argmin((yy - cy) ** 2 + (xx - cx) ** 2))
        label = data[yy[k], xx[k]]
    return data == label


def _colour(planes: np.ndarray, skies: list[float], seg: np.ndarray, pair) -> float:
    if pair is None:
        return float("nan")
    blue, red = (float(np.nansum(planes[i][seg] - skies[i])) for i in pair)
    return float(-2.5 * np.log10(blue / red)) if blue > 0 and red > 0 else float("nan")


def measure_cutout(planes, bands=None) -> tuple[np.ndarray, int, int, str | None]:
    """Morphology of one cut-out ``planes (C, S, S)`` (module docstring).

    Returns ``(values, flag, sersic_flag, error)``: the float columns of :data:`MORPH_COLUMNS` in order (NaN where
    unmeasured), statmorph's flags (-1 when not measured) and a one-line reason when it failed (else None).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # photutils' "no sources", statmorph's per-quantity notes: see the flags
        return _measure(planes, bands)


def _measure(planes, bands) -> tuple[np.ndarray, int, int, str | None]:
    import statmorph  # noqa: PLC0415

    planes = np.asarray(planes, np.float64)
    if planes.ndim == 2:
        planes = planes[None]
    c = planes.shape[0]
    out = np.full(_N, np.nan)
    band = 1 if c == 3 else 0
    skies = [_sky(p) for p in planes]
    sky, sigma = skies[band]
    if not (np.isfinite(sky) and sigma > 0):
        return out, -1, -1, "blank: no sky noise on the cut-out's border (empty, constant or missing pixels)"
    x = np.nan_to_num(planes[band] - sky, nan=0.0)
    seg = _segment(x, sigma)
    if seg is None:
        return out, -1, -1, f"no source {THRESHOLD_SIGMA:g} sigma above the sky"
    s = x.shape[-1]
    try:
        m = statmorph.source_morphology(x, seg.astype(np.int32), weightmap=np.full_like(x, sigma),
                                        skybox_size=max(8, s // 4))[0]
        vals = [m.gini, m.m20, m.concentration, m.asymmetry, m.smoothness, m.sersic_n, m.rhalf_circ,
                1.0 - m.ellipticity_asymmetry]
        flag, sflag = int(m.flag), int(m.flag_sersic)
    except Exception as exc:  # noqa: BLE001 - one bad cut-out is a problem, not the end of the run
        return out, -1, -1, f"statmorph failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    vals = np.array(vals, np.float64)
    vals[(vals == -99.0) | ~np.isfinite(vals)] = np.nan   # statmorph's "not measured"
    out[:-1] = vals
    out[-1] = _colour(planes, [sk for sk, _ in skies], seg, colour_bands(list(bands or [])) if bands else (
        colour_bands(["?"] * c)))
    if flag >= 4:
        out[:] = np.nan
        return out, flag, sflag, "statmorph: catastrophic failure (flag 4: non-positive flux in the segment)"
    return out, flag, sflag, None


def measure_chunk(planes, bands: list) -> list[tuple[np.ndarray, int, int, str | None]]:
    """:func:`measure_cutout` of each of ``planes (n, C, S, S)`` with its band names (a worker's task)."""
    return [measure_cutout(p, b) for p, b in zip(planes, bands)]


def _pool_results(stack, bands, workers: int, ctx: TaskContext):
    """Yield ``(index, result)`` of each cut-out measured on ``workers`` processes, a few chunks ahead."""
    import multiprocessing as mp  # noqa: PLC0415
    from concurrent.futures import FIRST_COMPLETED, wait  # noqa: PLC0415

    from galdesk.procutil import stop_pool, worker_pool  # noqa: PLC0415
    from galdesk.tasks import Cancelled  # noqa: PLC0415

    n = len(stack)
    starts = iter(range(0, n, _CHUNK))
    # spawn: safe beside Qt threads and torch (a fork of a threaded process can deadlock)
    with worker_pool(workers, mp.get_context("spawn")) as pool:
        pending = {}

        def submit():
            i = next(starts, None)
            if i is not None:
                j = min(n, i + _CHUNK)
                pending[pool.submit(measure_chunk, np.asarray(stack[i:j], np.float32), bands[i:j])] = i

        for _ in range(workers * 3):
            submit()
        try:
            while pending:
                if ctx.cancelled():
                    raise Cancelled()
                finished, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    for k, res in enumerate(fut.result()):
                        yield i + k, res
                    submit()
        except BaseException:
            for fut in pending:
                fut.cancel()
            stop_pool(pool)
            raise


def measure_stack(stack, bands=None, ids=None, workers: int = 1,
                  ctx: TaskContext | None = None) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Morphology of every cut-out of ``stack (N, C, S, S)`` (an array or a lazy project view).

    ``bands``: band names per cut-out (for the colour), ``ids``: names for the problems. With ``workers > 1`` and
    at least :data:`PARALLEL_MIN` cut-outs they are measured in worker processes (that end with this one);
    cancellable between cut-outs (in this process) or every 0.2 s (workers).

    Returns ``(columns, problems)``: every column of :data:`MORPH_COLUMNS` (float32) and :data:`FLAG_COLUMNS`
    (int16), and one ``{"id", "error"}`` per cut-out that could not be measured.
    """
    ctx = ctx or NullContext()
    n = len(stack)
    c = int(np.shape(stack)[1]) if n else 1
    bands = list(bands) if bands is not None else [["?"] * c] * n
    ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    values = np.full((n, _N), np.nan, np.float32)
    flags = np.full((n, 2), -1, np.int16)
    problems: list = []

    def local():
        for i in range(n):
            ctx.check_cancelled()
            yield i, measure_cutout(stack[i], bands[i])

    done = 0
    source = _pool_results(stack, bands, workers, ctx) if workers > 1 and n >= PARALLEL_MIN else local()
    for i, (vals, flag, sflag, error) in source:
        values[i], flags[i] = vals, (flag, sflag)
        if error:
            problems.append((i, {"id": ids[i], "error": error}))
        done += 1
        ctx.progress(done / max(n, 1), f"Morphology {done}/{n}")
    problems = [p for _, p in sorted(problems, key=lambda x: x[0])]   # in cut-out order, whatever finished first
    cols = {name: values[:, k] for k, name in enumerate(MORPH_COLUMNS)}
    cols.update({name: flags[:, k] for k, name in enumerate(FLAG_COLUMNS)})
    return cols, problems


def _targets(project):
    """``(object rows, [(group, rows of it)])`` of every image cut-out, grouped by band count."""
    objs = project.objects
    rows = project.image_rows()
    groups = np.asarray(objs["group"])[rows] if rows.size else np.zeros(0, str)
    return rows, [(str(g), rows[groups == g]) for g in sorted(set(groups.tolist()))]


def measure_morphology(project, workers: int | None = None, ctx: TaskContext | None = None,
                       save: bool = True) -> dict:
    """Measure every image cut-out of ``project`` and store result ``"morphology"`` (re-running replaces it).

    The result: arrays ``row`` (object-table rows) and one per column of :data:`MORPH_COLUMNS` and
    :data:`FLAG_COLUMNS`; attrs ``statmorph`` and ``photutils`` (versions), ``band`` (the measured band of each
    band count), ``colour`` (which bands), ``working_size``, ``threshold_sigma``, ``weightmap``, ``seconds``,
    ``seconds_per_cutout``, ``workers``, ``n_measured``, ``n_failed``, ``problems`` (the first 1,000).

    Returns a summary: ``project``, ``objects``, ``measured``, ``failed``, ``seconds``, ``seconds_per_cutout``,
    ``workers``, ``problems``.
    """
    import photutils  # noqa: PLC0415
    import statmorph  # noqa: PLC0415

    from galdesk.tasks import ScaledContext  # noqa: PLC0415

    ctx = ctx or NullContext()
    project = as_project(project)
    if save:
        project.check_writable("the morphology")
    workers = max(1, int(workers or 1))
    t0 = time.monotonic()
    rows, groups = _targets(project)
    if not rows.size:
        raise ValueError(f"{project.path}: no image cut-outs to measure")
    objs = project.objects
    cols = {name: np.full(rows.size, np.nan, np.float32) for name in MORPH_COLUMNS}
    cols.update({name: np.full(rows.size, -1, np.int16) for name in FLAG_COLUMNS})
    problems, bands_used, lo = [], {}, 0.0
    for group, grows in groups:
        pos = np.searchsorted(rows, grows)
        stack = project.stack_view(group, np.asarray(objs["row"])[grows].astype(np.int64))
        bands = [str(b).split(",") for b in np.asarray(objs["bands"])[grows]]
        hi = lo + grows.size / rows.size
        part, probs = measure_stack(stack, bands, np.asarray(objs["id"])[grows].astype(str), workers=workers,
                                    ctx=ScaledContext(ctx, lo, hi))
        for name, v in part.items():
            cols[name][pos] = v
        problems += probs
        c = len(bands[0]) if bands else 1
        bands_used[group] = bands[0][1 if c == 3 else 0] if bands else ""
        lo = hi
    seconds = time.monotonic() - t0
    n_failed = int(np.count_nonzero(cols["morph_flag"] < 0) + np.count_nonzero(cols["morph_flag"] >= 4))
    attrs = {"statmorph": statmorph.__version__, "photutils": photutils.__version__, "band": bands_used,
             "colour": "-2.5 log10(F_first/F_last); JPEG r,g,b planes: b over r", "columns": list(MORPH_COLUMNS)
             + list(FLAG_COLUMNS), "working_size": int(project.working_size), "threshold_sigma": THRESHOLD_SIGMA,
             "weightmap": "sky sigma everywhere (no gain)", "seconds": seconds, "workers": workers,
             "seconds_per_cutout": seconds / rows.size, "n_measured": int(rows.size) - n_failed,
             "n_failed": n_failed, "problems": problems[:1000]}
    if save:
        project.save_result(MORPHOLOGY, {"row": rows, **cols}, attrs)
    ctx.progress(1.0, f"Morphology of {rows.size} cut-outs ({n_failed} failed)")
    return {"project": str(project.path), "objects": int(rows.size), "measured": attrs["n_measured"],
            "failed": n_failed, "seconds": seconds, "seconds_per_cutout": attrs["seconds_per_cutout"],
            "workers": workers, "problems": problems}


def _feature_matrix(cols: dict[str, np.ndarray]) -> np.ndarray:
    """The clustering's features (:data:`FEATURE_NAMES`) from the columns, NaN where unmeasured."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rhalf = np.log10(np.where(np.asarray(cols["morph_rhalf"]) > 0, cols["morph_rhalf"], np.nan))
    return np.stack([rhalf if name == "log10_morph_rhalf" else np.asarray(cols[name], np.float64)
                     for name in FEATURE_NAMES], axis=1)


def _fill(feats: np.ndarray, med: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NaN cells -> column medians (``med``, else of ``feats``' own complete rows); ``(filled, bad rows, med)``."""
    ok = np.isfinite(feats)
    bad = ~ok.all(axis=1)
    if med is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # a column without any value: 0 below
            med = np.nanmedian(np.where(ok & ~bad[:, None], feats, np.nan), axis=0) if (~bad).any() else (
                np.nanmedian(feats, axis=0))
        med = np.where(np.isfinite(med), med, 0.0)
    return np.where(ok, feats, med).astype(np.float32), np.flatnonzero(bad), med


def morphology_features(project, rows=None, copies: int = 0, copy_rows=None, workers: int = 1,
                        ctx: TaskContext | None = None) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray | None]:
    """The stored morphology as a feature set: ``(rows, features (N, D) float32, info, copy features)``.

    ``rows``: object rows wanted (default all measured); each must have been measured. Rows with a NaN get the
    column medians of the complete rows and are listed in ``info["bad_rows"]`` (positions, the first 1,000).
    ``copies > 0``: measure that many turned copies (:func:`galdesk.cluster.descriptors.turned`) of the cut-outs
    at positions ``copy_rows`` (statmorph again, seconds each: pass a sample): ``(len(copy_rows), copies, D)``.
    The features are not standardised here (PCA does it).
    """
    from galdesk.cluster.descriptors import turned  # noqa: PLC0415

    project = as_project(project)
    stored = load_morphology(project)
    if stored is None:
        raise ValueError(f"{project.path}: no morphology measured yet; run 'galdesk morphology {project.path}' "
                         "first")
    srows, cols, attrs = stored
    index = {int(r): i for i, r in enumerate(srows)}
    rows = srows if rows is None else np.asarray(rows, np.int64)
    missing = [int(r) for r in rows if int(r) not in index]
    if missing:
        raise ValueError(f"{project.path}: {len(missing)} cut-outs have no stored morphology (measured before "
                         "they were added?); run 'galdesk morphology' again")
    take = np.array([index[int(r)] for r in rows], np.int64)
    feats, bad, med = _fill(_feature_matrix({k: np.asarray(v)[take] for k, v in cols.items()}))
    info = {"model_id": MORPHOLOGY, "model_hash": f"statmorph-{attrs.get('statmorph', '?')}", "layer": "statmorph",
            "dim": len(FEATURE_NAMES), "names": list(FEATURE_NAMES), "n_bad": int(bad.size),
            "bad_rows": bad[:1000].tolist(), "device": "cpu", "views": "turned"}
    if not copies or copy_rows is None or not len(copy_rows):
        return rows, feats, info, None
    copy_rows = np.asarray(copy_rows, np.int64)
    objs = project.objects
    group = str(objs["group"][int(rows[copy_rows[0]])])
    stack = np.asarray(project.stack_view(group, np.asarray(objs["row"])[rows[copy_rows]].astype(np.int64))[:])
    bands = [str(b).split(",") for b in np.asarray(objs["bands"])[rows[copy_rows]]]
    out = np.empty((copy_rows.size, copies, len(FEATURE_NAMES)), np.float32)
    ctx = ctx or NullContext()
    from galdesk.tasks import ScaledContext  # noqa: PLC0415

    for k in range(1, copies + 1):
        part, _ = measure_stack(turned(stack, k), bands, workers=workers,
                                ctx=ScaledContext(ctx, (k - 1) / copies, k / copies))
        out[:, k - 1] = _fill(_feature_matrix(part), med)[0]
    return rows, feats, info, out
