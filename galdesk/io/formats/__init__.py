"""The built-in file formats, one module per format family (as specutils' ``default_loaders``).

Importing this package registers every built-in reader with :mod:`galdesk.io.registry`;
:mod:`galdesk.io.reading` imports it, so ``galdesk.io.read`` knows them all. Each module's docstring states every
decision its readers take.

===============  ========  ==============  ==========================================================
format           priority  module          files
===============  ========  ==============  ==========================================================
``sdss-spec``    20        ``sdss``        SDSS/BOSS ``spec-*.fits`` (COADD, SPECOBJ/SPALL, SPZLINE)
``sdss-spspec``  20        ``sdss``        old SDSS spSpec (DR1-DR7), primary image ``(4-5, N)``
``6dfgs``        20        ``sixdf``       6dF Galaxy Survey, primary image ``(4, N)``
``lamost``       20        ``lamost``      LAMOST DR1-style, primary image ``(5, N)``
``desi-coadd``   20        ``desi``        DESI ``coadd-*``/``spectra-*``, B/R/Z arms combined
``eso-sdp``      15        ``eso``         ESO Phase 3 one-row binary-table 1-D spectra
``fits-1d``      5         ``wcs1d``       1-D FITS: wavelength WCS, COEFF0/1 or a WAVE HDU; error HDUs
``text``         5         ``text``        text columns ``wavelength flux [error]``
``fits-image``   0         ``fits_image``  FITS images, cubes, bands in extensions, stamp collections
``image-pil``    10        ``pil_image``   JPEG/PNG (TIFF/BMP/GIF) through PIL
``hdf5-stack``   10        ``hdf5``        HDF5 image stacks ``N x H x W [x C]``
===============  ========  ==============  ==========================================================

Helpers shared by several formats (binary tables read straight from the file, header values, inverse variances,
wavelength and flux units, 1-D spectral WCS, SDSS ``wdisp``) live in :mod:`galdesk.io.formats.common`.

How to add a reader
-------------------
Write one module here for the format family, with:

1. an **identifier** ``_is_myformat(probe) -> bool`` that looks only at the :class:`~galdesk.io.probe.Probe`
   (``probe.head``, ``probe.suffix``, ``probe.text_head()``, and for FITS ``probe.fits_summary`` /
   ``image_hdus()`` / ``table_hdus()``, whose ``info.kw`` are the header keywords) and never reads the data. An
   exception counts as "no", but an identifier should not raise;
2. a **reader** ``read_myformat(probe) -> list[SpectrumData | ImageData]`` that opens the file (FITS with
   :func:`~galdesk.io.formats.common.fits_open` in a ``with`` block, copying the arrays it keeps) and raises
   ``ValueError`` with a one-line reason for a problem it diagnoses. :func:`galdesk.io.reading.read` adds the file
   name, enforces the conventions (``check_image``/``check_spectrum``) and sets ``meta["format"]``;
3. a **priority**: above the generic readers that may also match (``fits-image`` 0, ``fits-1d`` and ``text`` 5;
   survey formats use 15-20). Two matches at the same top priority are a ``ReadError`` ("ambiguous format"), so
   choose an identifier that no other format at that priority shares;
4. ``register_reader("myformat", "spectrum", _is_myformat, read_myformat, priority=20)`` at the bottom of the
   module, and the module's name in the import below, so that it registers.

From :mod:`galdesk.io` a format module imports only ``registry``, ``probe``, ``model``, ``fitshead``, ``messages``
and ``formats.common`` -- never ``galdesk.io.reading`` or the ``galdesk.io`` package itself (an import cycle).
Readers of other packages can call :func:`~galdesk.io.registry.register_reader` the same way from their own code.

Tests: spectra in ``tests/test_io_spectra.py``, images in ``tests/test_io_images.py``, with a real file from
``shared/data`` (``need(shared_data / ...)``) or a synthetic file written in ``tmp_path`` following the survey's
data model; a broken variant belongs in the corpus of ``tests/test_bad_input.py``. The tests that read every real
file fail if the new identifier also claims a file of another format at the same priority.
"""

from galdesk.io.formats import desi, eso, fits_image, hdf5, lamost, pil_image, sdss, sixdf, text, wcs1d

__all__ = ["desi", "eso", "fits_image", "hdf5", "lamost", "pil_image", "sdss", "sixdf", "text", "wcs1d"]
