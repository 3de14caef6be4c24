"""Bad-input corpus, generated in tmp_path: every bad file becomes exactly one Problem naming it, the good file beside
it still loads, and nothing raises. Randomly corrupted copies of real files either load or give a Problem."""

from __future__ import annotations

import os
import sys
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from astropy.io import fits
from conftest import need

from galdesk.io import ReadError, read, read_paths
from galdesk.io.fitshead import MAX_DATA_BYTES

GOOD_IMAGE = "images/fits/galsim_hst/100610.img.fits"
GOOD_SPECTRUM = "spectra/sdss/spec-0266-51602-0013.fits"
GOOD_JPEG = "images/gz1/jpeg/588848901532418163.jpeg"


# ------------------------------------------------------------------------------------------------------------------
# the corpus
# ------------------------------------------------------------------------------------------------------------------
def _thin_fits(tmp, shared):
    """1 x 2,000,000 pixels: 8 MB on disk, but padding it to a square would need 14.6 TiB."""
    p = tmp / "thin.fits"
    fits.PrimaryHDU(np.zeros((1, 2_000_000), np.float32)).writeto(p)
    return p, "not a galaxy cut-out"


def _thin_png(tmp, shared):
    from PIL import Image

    p = tmp / "thin.png"
    Image.fromarray(np.zeros((40_000, 1), np.uint8)).save(p)
    return p, "not a galaxy cut-out"


def _hdf5_external_storage(tmp, shared):
    """A stack whose raw data lives in another file (here a text file): it must not become pixels."""
    secret = tmp / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 2000)
    p = tmp / "external.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("images", shape=(4, 32, 32), dtype="u1", external=[(str(secret), 0, 4 * 32 * 32)])
    return p, "external files"


def _hdf5_external_link(tmp, shared):
    other = tmp / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("images", data=np.zeros((3, 16, 16), np.float32))
    p = tmp / "link.h5"
    with h5py.File(p, "w") as f:
        f["images"] = h5py.ExternalLink(str(other), "/images")
    return p, "external link"


def _named_pipe(tmp, shared):
    """A FIFO named like a FITS file: opening it would wait for a writer forever."""
    p = tmp / "pipe.fits"
    os.mkfifo(p)
    return p, "not a regular file"


def _truncated_spectrum(tmp, shared):
    raw = need(shared / GOOD_SPECTRUM).read_bytes()
    p = tmp / "truncated_spec.fits"
    p.write_bytes(raw[: len(raw) // 2])
    return p, "truncated"


def _truncated_image(tmp, shared):
    raw = need(shared / "images/fits/galsim_hst/147246.0_150.416558_1.998697_masknoise.fits").read_bytes()
    p = tmp / "truncated_img.fits"
    p.write_bytes(raw[: len(raw) // 2])
    return p, "truncated"


def _truncated_header(tmp, shared):
    raw = need(shared / GOOD_SPECTRUM).read_bytes()
    p = tmp / "cut_header.fits"
    p.write_bytes(raw[:1000])
    return p, "truncated"


def _four_d(tmp, shared):
    p = tmp / "four_d.fits"
    fits.PrimaryHDU(np.ones((2, 3, 8, 8), np.float32)).writeto(p)
    return p, "dimensionality"


def _one_d(tmp, shared):
    p = tmp / "one_d.fits"
    fits.PrimaryHDU(np.ones(100, np.float32)).writeto(p)
    return p, "dimensionality"


def _nan_image(tmp, shared):
    p = tmp / "nan_image.fits"
    fits.PrimaryHDU(np.full((16, 16), np.nan, np.float32)).writeto(p)
    return p, "all NaN"


def _nan_spectrum(tmp, shared):
    p = tmp / "nan_spectrum.fits"
    h = fits.Header()
    h["CRVAL1"], h["CDELT1"], h["CRPIX1"] = 4000.0, 1.0, 1.0
    fits.PrimaryHDU(np.full(200, np.nan, np.float32), header=h).writeto(p)
    return p, "all NaN"


def _nan_text_spectrum(tmp, shared):
    p = tmp / "nan_spec.txt"
    p.write_text("\n".join(f"{4000 + i} nan 1.0" for i in range(20)))
    return p, "all NaN"


def _zero_size_fits(tmp, shared):
    p = tmp / "zero.fits"
    p.write_bytes(b"")
    return p, "empty file"


def _zero_size_jpeg(tmp, shared):
    p = tmp / "zero.jpeg"
    p.write_bytes(b"")
    return p, "empty file"


def _zero_size_array(tmp, shared):
    p = tmp / "zero_axis.fits"
    h = fits.Header()
    h["SIMPLE"], h["BITPIX"], h["NAXIS"], h["NAXIS1"], h["NAXIS2"] = True, -32, 2, 0, 10
    p.write_bytes(h.tostring().encode())
    return p, "no data"


def _enormous_header_bytes() -> bytes:
    cards = ["SIMPLE  =                    T", "BITPIX  =                  -64", "NAXIS   =                    2",
             "NAXIS1  =              1000000", "NAXIS2  =              1000000", "END"]
    text = "".join(c.ljust(80) for c in cards)
    return text.ljust(2880).encode("ascii") + b"\0" * 2880


def _enormous(tmp, shared):
    p = tmp / "enormous.fits"
    p.write_bytes(_enormous_header_bytes())
    return p, "claims"


def _text_named_fits(tmp, shared):
    p = tmp / "notes.fits"
    p.write_text("This is not a FITS file, just some notes.\n")
    return p, "not a FITS file"


def _random_fits(tmp, shared):
    p = tmp / "random.fits"
    p.write_bytes(np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return p, "not a FITS file"


def _truncated_jpeg(tmp, shared):
    raw = need(shared / GOOD_JPEG).read_bytes()
    p = tmp / "truncated.jpeg"
    p.write_bytes(raw[: len(raw) // 2])
    return p, "truncated"


def _random_jpeg(tmp, shared):
    p = tmp / "random.jpeg"
    p.write_bytes(np.random.default_rng(6).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return p, "not a JPEG"


def _jpeg_header_garbage_body(tmp, shared):
    raw = need(shared / GOOD_JPEG).read_bytes()
    body = np.random.default_rng(7).integers(0, 256, len(raw) - 600, dtype=np.uint8).tobytes()
    p = tmp / "garbage_body.jpeg"
    p.write_bytes(raw[:600] + body + b"\xff\xd9")
    return p, None  # PIL may decode garbage or fail: either way no exception, and a Problem names the file


def _not_hdf5(tmp, shared):
    p = tmp / "fake.h5"
    p.write_text("not hdf5 at all")
    return p, None


def _hdf5_without_images(tmp, shared):
    p = tmp / "table.h5"
    with h5py.File(p, "w") as f:
        f["flux"] = np.ones(10)
    return p, "not an image stack"


def _missing(tmp, shared):
    return tmp / "does_not_exist.fits", "not found"


def _catalogue_fits(tmp, shared):
    p = tmp / "cat.fits"
    fits.BinTableHDU.from_columns([fits.Column("ID", "J", array=np.arange(3))]).writeto(p)
    return p, "catalogue"


def _decreasing_garbage_wave(tmp, shared):
    p = tmp / "zigzag.txt"
    waves = [4000 + 2 * i + (3 if i == 10 else 0) for i in range(20)]  # one pixel out of order
    p.write_text("".join(f"{w} 1 1\n" for w in waves))
    return p, "monotonic"


def _too_few_pixels(tmp, shared):
    p = tmp / "short.txt"
    p.write_text("".join(f"{4000 + i} 1 1\n" for i in range(11)))
    return p, "too few for a spectrum"


def _impossible_redshift(tmp, shared):
    """A real SDSS spectrum whose SPECOBJ says z = 50."""
    p = tmp / "z50.fits"
    with fits.open(need(shared / GOOD_SPECTRUM)) as h:
        h[2].data["Z"][0] = 50.0
        h.writeto(p)
    return p, "impossible"


def _no_positive_ivar(tmp, shared):
    p = tmp / "dead.fits"
    with fits.open(need(shared / GOOD_SPECTRUM)) as h:
        h[1].data["ivar"][:] = 0.0
        h.writeto(p)
    return p, "no pixel has a positive inverse variance"


def _zero_bscale(tmp, shared):
    p = tmp / "bscale0.fits"
    hdu = fits.PrimaryHDU(np.arange(64 * 64, dtype=np.int16).reshape(64, 64))
    hdu.writeto(p)
    with fits.open(p, mode="update") as h:
        h[0].header["BSCALE"] = 0.0
    return p, "BSCALE = 0"


CASES = [_truncated_spectrum, _truncated_image, _truncated_header, _four_d, _one_d, _nan_image, _nan_spectrum,
         _nan_text_spectrum, _zero_size_fits, _zero_size_jpeg, _zero_size_array, _enormous, _text_named_fits,
         _random_fits, _truncated_jpeg, _random_jpeg, _not_hdf5, _hdf5_without_images, _missing, _catalogue_fits,
         _decreasing_garbage_wave, _thin_fits, _thin_png, _too_few_pixels, _impossible_redshift, _no_positive_ivar,
         _zero_bscale, _hdf5_external_storage, _hdf5_external_link] + ([_named_pipe] if sys.platform != "win32" else [])


@pytest.mark.parametrize("make", CASES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("good", [GOOD_IMAGE, GOOD_SPECTRUM], ids=["good-image", "good-spectrum"])
def test_bad_file_is_one_problem_and_good_file_loads(make, good, tmp_path, shared_data):
    bad, expected = make(tmp_path, shared_data)
    good_path = need(shared_data / good)
    res = read_paths([bad, good_path])
    assert len(res.images) + len(res.spectra) == 1, res.problems
    assert len(res.problems) == 1
    problem = res.problems[0]
    assert problem.path == str(bad)
    assert bad.name in problem.error and "\n" not in problem.error and "Traceback" not in problem.error
    if expected is not None:
        assert expected.lower() in problem.error.lower(), problem.error
    with pytest.raises(ReadError):
        read(bad)


def test_garbage_jpeg_body_never_raises(tmp_path, shared_data):
    bad, _ = _jpeg_header_garbage_body(tmp_path, shared_data)
    res = read_paths([bad, need(shared_data / GOOD_JPEG)])
    assert len(res.images) >= 1 and len(res.problems) <= 1
    assert all(bad.name in p.error for p in res.problems)


def test_enormous_header_refused_fast_without_allocating(tmp_path):
    p = tmp_path / "huge.fits"
    p.write_bytes(_enormous_header_bytes())
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ReadError) as info:
        read(p)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    msg = str(info.value)
    assert "1000000 x 1000000" in msg and "64-bit floats" in msg and "TiB" in msg
    assert elapsed < 2.0 and peak < 50 * 1024**2
    # a claim just below the limit but beyond the end of the file is "truncated", not allocated either
    n = int((MAX_DATA_BYTES // 4) ** 0.5)
    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    2",
             f"NAXIS1  = {n:>20}", f"NAXIS2  = {n:>20}", "END"]
    p2 = tmp_path / "big_claim.fits"
    p2.write_bytes("".join(c.ljust(80) for c in cards).ljust(2880).encode())
    with pytest.raises(ReadError, match="truncated"):
        read(p2)


# ------------------------------------------------------------------------------------------------------------------
# randomly corrupted copies of real files
# ------------------------------------------------------------------------------------------------------------------
CORRUPT_SOURCES = [GOOD_SPECTRUM, "spectra/6dfgs/agn/g0926124-763737.ir.fits",
                   "spectra/lamost/spec-55862-B6212_sp06-020.fits", "spectra/sdss_old/sample_sdss.fits",
                   "images/fits/galsim_hst/AEGIS_F606w_images_01.fits", GOOD_JPEG,
                   "images/gz1/jpeg/588848901530583233.jpeg"]


@pytest.mark.parametrize("source", CORRUPT_SOURCES, ids=lambda s: s.split("/")[-1])
def test_corrupted_copies_load_or_give_a_problem(source, tmp_path, shared_data):
    src = need(shared_data / source)
    raw = bytearray(src.read_bytes())
    good = need(shared_data / GOOD_IMAGE)
    rng = np.random.default_rng(sum(source.encode()))  # seeded per source, stable across runs
    outcomes = {"loaded": 0, "problem": 0}
    for k in range(10):
        data = bytearray(raw)
        # half the copies are hit in the header / first block, where parsers are most fragile
        span = min(len(data), 2880) if k % 2 == 0 else len(data)
        for pos in rng.integers(0, span, size=int(rng.integers(1, 12))):
            data[pos] = (data[pos] ^ int(rng.integers(1, 256))) & 0xFF
        bad = tmp_path / f"corrupt{k}_{src.name}"
        bad.write_bytes(bytes(data))
        res = read_paths([bad, good])  # must never raise
        assert len(res.images) >= 1  # the good file
        bad_problems = [p for p in res.problems if p.path == str(bad)]
        assert len(res.problems) == len(bad_problems) <= 1
        for p in bad_problems:
            assert bad.name in p.error and "\n" not in p.error
        outcomes["problem" if bad_problems else "loaded"] += 1
    assert sum(outcomes.values()) == 10


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes are POSIX")
def test_ingest_of_a_folder_with_a_named_pipe_finishes(tmp_path, shared_data):
    import subprocess

    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe.fits")
    (src / "good.fits").write_bytes(need(shared_data / GOOD_IMAGE).read_bytes())
    r = subprocess.run([sys.executable, "-m", "galdesk", "ingest", str(src), "-o", str(tmp_path / "p"), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '"objects": 1' in r.stdout and "not a regular file" in r.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
def test_thin_images_cannot_sink_an_ingest_under_a_memory_limit(tmp_path, shared_data):
    import resource
    import subprocess

    src = tmp_path / "src"
    src.mkdir()
    _thin_fits(src, shared_data)
    _thin_png(src, shared_data)
    (src / "good.fits").write_bytes(need(shared_data / GOOD_IMAGE).read_bytes())

    def two_gb():
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    r = subprocess.run([sys.executable, "-m", "galdesk", "ingest", str(src), "-o", str(tmp_path / "p"), "--json",
                        "--workers", "1"], capture_output=True, text=True, timeout=300, preexec_fn=two_gb)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '"objects": 1' in r.stdout and r.stdout.count("not a galaxy cut-out") == 2


def test_problem_lines_never_quote_a_files_contents(tmp_path, shared_data):
    secret = "root:x:0:0:hunter2:/root:/bin/bash"
    files = {"passwd": secret, "notes.csv": f"{secret},1,2\n", "fake.fits": secret, "fake.jpg": secret,
             "blob.bin": "\x00\x01" + secret}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    cat = tmp_path / "cat.csv"
    cat.write_text("id,file\n" + "".join(f"o{i},{name}\n" for i, name in enumerate(files)))
    from galdesk.services.ingest import ingest

    res = ingest([], tmp_path / "p", catalog=cat, workers=1)
    assert len(res.problems) == len(files)
    for p in res.problems:
        assert "hunter2" not in p.error and "root:x" not in p.error, p.error


def test_a_tiny_hdf5_file_claiming_a_billion_images_is_refused_at_once(tmp_path):
    """10 kB on disk (a chunked dataset of fill values), 10^9 x 64 x 64 claimed: refused before streaming."""
    from galdesk.services.ingest import ingest

    p = tmp_path / "huge.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("images", shape=(10**9, 64, 64), dtype="f4", chunks=(1, 64, 64))
    assert p.stat().st_size < 100_000
    tracemalloc.start()
    t0 = time.monotonic()
    res = ingest([p], tmp_path / "proj", workers=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.monotonic() - t0 < 30 and peak < 200 * 1024**2
    assert len(res.problems) == 1 and "GALDESK_MAX_STACK_BYTES" in res.problems[0].error


def test_tile_compressed_image_is_judged_by_its_decompressed_size(tmp_path):
    """A .fits.fz holds a compressed table; what would be allocated is the image it decompresses to, and the
    caller's limit (not only the global one) applies to it."""
    import numpy as np
    from astropy.io import fits

    from galdesk.io.fitshead import FitsGuardError, scan_fits

    p = tmp_path / "img.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.zeros((200, 200), np.float32))]).writeto(p)
    assert p.stat().st_size < 25_000                           # 160 kB once decompressed
    scan_fits(p)                                               # the default limit: fine
    with pytest.raises(FitsGuardError, match="once decompressed"):
        scan_fits(p, max_bytes=100_000)


def test_png_decompression_bomb_is_one_problem_line(tmp_path):
    """A 200-byte PNG whose header claims 20000 x 10000 pixels: PIL's own bomb guard fires at open; it is one
    clear problem line, the other files are read."""
    import struct
    import zlib

    from galdesk.io.reading import read_paths

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 20000, 10000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "good.png")
    res = read_paths([tmp_path])
    assert [it.id for it in res.images] == ["good"]
    assert len(res.problems) == 1 and res.problems[0].path.endswith("bomb.png")
    assert "decompression bomb?): refused before decoding" in res.problems[0].error


def test_catalogue_with_a_million_columns_is_refused_at_once(tmp_path, monkeypatch):
    """10^6 columns took astropy ~1 minute to parse (and every join after it as long): refused from the first line,
    with the setting that lifts the limit named."""
    from galdesk.io.catalog import read_catalog
    from galdesk.io.model import ReadError

    p = tmp_path / "wide.csv"
    n = 1_000_000
    p.write_text(",".join(f"c{i}" for i in range(n)) + "\n" + ",".join("1" for _ in range(n)) + "\n")
    with pytest.raises(ReadError, match="more than 10,000 columns.*GALDESK_MAX_CATALOG_COLUMNS"):
        read_catalog(p)   # from the first line, before astropy parses anything
    small = tmp_path / "ok.csv"
    small.write_text(",".join(f"c{i}" for i in range(50)) + "\n" + ",".join("1" for _ in range(50)) + "\n")
    monkeypatch.setenv("GALDESK_MAX_CATALOG_COLUMNS", "20")
    with pytest.raises(ReadError, match="more than 20 columns"):
        read_catalog(small)
    monkeypatch.setenv("GALDESK_MAX_CATALOG_COLUMNS", "100")
    assert len(read_catalog(small).colnames) == 50


def test_limits_come_from_the_environment_then_the_settings_file(tmp_path, monkeypatch):
    """Each safety limit: its environment variable wins, else settings.json's "limits", else the built-in default;
    nonsense values fall through to the next source."""
    import json

    from galdesk import config
    from galdesk.io.catalog import max_catalog_columns
    from galdesk.io.reading import max_aspect_ratio

    monkeypatch.setenv("GALDESK_CONFIG_DIR", str(tmp_path))
    for k in config.LIMIT_ENV.values():
        monkeypatch.delenv(k, raising=False)
    (tmp_path / "settings.json").write_text(json.dumps({"limits": {"max_aspect_ratio": 50,
                                                                   "max_catalog_columns": "lots"}}))
    config.reload_limits()
    try:
        assert max_aspect_ratio() == 50                  # from the file
        assert max_catalog_columns() == 10_000           # nonsense in the file: the default
        monkeypatch.setenv("GALDESK_MAX_ASPECT_RATIO", "30")
        assert max_aspect_ratio() == 30                  # the environment wins
        monkeypatch.setenv("GALDESK_MAX_ASPECT_RATIO", "-3")
        assert max_aspect_ratio() == 50                  # a negative value is ignored
        assert config.limit("lock_timeout", 30.0) == 30.0
        monkeypatch.setenv("GALDESK_LOCK_TIMEOUT", "0")
        assert config.limit("lock_timeout", 30.0, allow_zero=True) == 0.0
    finally:
        config.reload_limits()


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
def test_the_whole_corpus_in_one_parallel_ingest_under_a_memory_limit(tmp_path, shared_data):
    """Every hostile file of the corpus beside 42 good ones, in one ingest with two worker processes, under a
    2 GB address-space limit (the worker processes inherit it): the good files are ingested, each bad file is one
    problem line naming it, no traceback, exit 0."""
    import json
    import resource
    import subprocess

    bad = []
    for k, make in enumerate(CASES):
        folder = tmp_path / f"case{k:02d}"
        folder.mkdir()
        bad.append(make(folder, shared_data)[0])
    good = [need(shared_data / g) for g in (GOOD_IMAGE, GOOD_SPECTRUM)]
    good += sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:40]   # over 64 files: worker processes

    def two_gb():
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    r = subprocess.run([sys.executable, "-m", "galdesk", "ingest", *map(str, bad + good), "-o",
                        str(tmp_path / "p"), "--json", "--workers", "2"], capture_output=True, text=True,
                       timeout=600, preexec_fn=two_gb)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["objects"] + out["spectra"] == len(good) == 42, out
    named = [p["path"] for p in out["problems"]]
    assert sorted(named) == sorted(map(str, bad)), set(named) ^ set(map(str, bad))
