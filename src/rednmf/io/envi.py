"""Read ENVI ``.hdr`` + binary images: the header by Spectral Python, the data memory-mapped.

The header gives the size, data type, interleave (BSQ, BIL or BIP), byte
order (little-endian when it is missing, as GDAL reads it, with a warning),
header offset and optionally ``wavelength``, ``bbl`` (bad band list:
0 = bad, dropped here) and ``data ignore value`` (no-data). The georeference
(``map info`` / ``coordinate system string``) is read through GDAL's ENVI
driver when it can be (:func:`rednmf.io.geotiff.read_georef`).

Every failure a user can cause is an :class:`~rednmf.exceptions.InputError`
with a one-line message.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rednmf.exceptions import InputError, one_line
from rednmf.io.mat import check_file

__all__ = ["EnviImage", "read_envi", "find_envi_data", "find_envi_header", "DATA_SUFFIXES"]

#: Extensions of ENVI data files next to a ``.hdr``.
DATA_SUFFIXES = (".img", ".dat", ".bsq", ".bil", ".bip", ".raw", "")


@dataclass
class EnviImage:
    """What :func:`read_envi` found in an ENVI image.

    Attributes
    ----------
    cube : numpy.ndarray of shape (rows, cols, bands)
        The bands kept (``bbl`` bad bands dropped), a read-only memory map when
        no band was dropped, else an in-memory copy; the stored dtype.
    header : pathlib.Path
        The ``.hdr`` file.
    data_file : pathlib.Path
        The binary data file.
    wavelengths : numpy.ndarray or None
        Centre wavelengths of the kept bands.
    wavelength_units : str or None
        As written in the header.
    bad_bands : numpy.ndarray
        0-based indices (in the file) of the bands dropped by ``bbl``.
    nodata : float or None
        The header's ``data ignore value``.
    interleave : str
        ``'bsq'``, ``'bil'`` or ``'bip'``.
    byte_order : str
        ``'little-endian'`` or ``'big-endian'``.
    """

    cube: np.ndarray
    header: Path
    data_file: Path
    wavelengths: np.ndarray | None
    wavelength_units: str | None
    bad_bands: np.ndarray
    nodata: float | None
    interleave: str
    byte_order: str


def find_envi_header(path: Path) -> Path | None:
    """Return the ``.hdr`` of an ENVI data file (``x.img`` -> ``x.hdr`` or ``x.img.hdr``)."""
    if path.suffix.lower() == ".hdr":
        return path
    for candidate in (
        path.with_suffix(".hdr"),
        path.with_suffix(".HDR"),
        path.parent / (path.name + ".hdr"),
    ):
        if candidate.is_file():
            return candidate
    return None


def find_envi_data(header: Path) -> Path:
    """Return the data file beside an ENVI header (``x.hdr`` -> ``x.img``, ``x.dat``, ..., ``x``).

    Raises
    ------
    InputError
        If no file with a suffix of :data:`DATA_SUFFIXES` lies beside the header.
    """
    stem = header.with_suffix("")
    for suffix in DATA_SUFFIXES:
        for s in {suffix, suffix.upper()}:
            candidate = Path(str(stem) + s)
            if candidate.is_file() and candidate != header:
                return candidate
    raise InputError(
        f"no ENVI data file next to {header} (looked for {stem.name}.img, .dat, .bsq, .bil, "
        ".bip, .raw or no extension); put the data file beside its header"
    )


#: Values read from the data file for the byte-order check.
_BYTE_ORDER_SAMPLE = 65536


def _odd_fraction(values: np.ndarray) -> float:
    """Fraction of non-finite or denormal floats: values no instrument writes."""
    tiny = np.finfo(values.dtype).tiny
    with np.errstate(invalid="ignore", over="ignore"):
        odd = ~np.isfinite(values) | ((values != 0) & (np.abs(values) < tiny))
    return float(np.mean(odd))


def _wild_fraction(values: np.ndarray) -> float:
    """Fraction of floats that are non-finite or beyond 1e-20 .. 1e20 in magnitude (not 0)."""
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.abs(values.astype(np.float64))
        wild = ~np.isfinite(size) | (size > 1e20) | ((size != 0) & (size < 1e-20))
    return float(np.mean(wild))


def _byte_entropy(raw: np.ndarray, index: int) -> float:
    """Shannon entropy (bits) of byte ``index`` of the items in ``raw`` (items x itemsize)."""
    counts = np.bincount(raw[:, index], minlength=256)
    p = counts[counts > 0] / raw.shape[0]
    return float(-(p * np.log2(p)).sum())


def _check_byte_order(
    data: Path, header: Path, offset: int, dtype: np.dtype, byte_order: str
) -> None:
    """Refuse data certainly read in the wrong byte order; warn when it only looks so.

    The check reads one block from the middle of the file both ways. It never
    refuses a file that could be valid:

    - floats: refused when the declared order gives over 5 % non-finite or
      denormal values and the other order under 1 % (a real image holds no
      denormals, and its NaN/inf read the other way are denormal). Warned when
      the declared order gives over 5 % values beyond 1e-20 .. 1e20 in
      magnitude and the other under 1 %.
    - integers: warned when the most significant byte of the declared order
      varies more (by over one bit of entropy) than the least significant one:
      measured values fill the low byte and leave the high byte nearly fixed.

    Integer-valued floats (counts saved as float32, as Spectral Python's
    ``envi.save_image`` does) read the wrong way are denormal, so the declared
    order is then known right and nothing else is checked.
    """
    if dtype.itemsize == 1:
        return
    n_items = (data.stat().st_size - offset) // dtype.itemsize
    count = int(min(n_items, _BYTE_ORDER_SAMPLE))
    if count < 64:
        return
    start = offset + ((n_items - count) // 2) * dtype.itemsize
    declared = dtype.newbyteorder("<" if byte_order == "0" else ">")
    raw = np.fromfile(data, dtype=np.uint8, count=count * dtype.itemsize, offset=start)
    raw = raw.reshape(count, dtype.itemsize)
    declared_name = "little-endian" if byte_order == "0" else "big-endian"
    fix = "1" if byte_order == "0" else "0"
    where = f"{data.name} ({header.name} says byte order = {byte_order}, {declared_name})"
    if dtype.kind == "f":
        a = raw.view(declared).ravel()
        b = raw.view(declared.newbyteorder("S")).ravel()
        odd_a, odd_b = _odd_fraction(a), _odd_fraction(b)
        if odd_a > 0.05 and odd_b < 0.01:
            raise InputError(
                f"{where} reads as {odd_a:.0%} non-finite or denormal values, the other byte "
                f"order as valid numbers; set 'byte order = {fix}' in the header"
            )
        if odd_b > 0.05 and odd_a < 0.01:
            return  # the other order is the impossible one
        wild_a, wild_b = _wild_fraction(a), _wild_fraction(b)
        suspicious = wild_a > 0.05 and wild_b < 0.01
        what = f"{wild_a:.0%} of its values beyond 1e-20 .. 1e20 in magnitude"
    else:
        high = 0 if byte_order == "1" else dtype.itemsize - 1
        low = dtype.itemsize - 1 - high
        h_high, h_low = _byte_entropy(raw, high), _byte_entropy(raw, low)
        suspicious = h_high > h_low + 1.0
        what = (
            f"its most significant bytes varying more ({h_high:.1f} bits) than its least "
            f"significant ones ({h_low:.1f} bits)"
        )
    if suspicious:
        warnings.warn(
            f"{where} looks written in the other byte order, with {what}; if the scene looks "
            f"wrong, set 'byte order = {fix}' in the header",
            UserWarning,
            stacklevel=3,
        )


def _header_int(meta: dict[str, object], key: str, header: Path) -> int:
    try:
        value = int(str(meta[key]).strip())
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"ENVI header {header.name} has no valid {key!r} ({meta.get(key)!r}); fix the header"
        ) from exc
    return value


def _header_band_list(
    values: Any, header: Path, bands: int, named: str, counted: str, fix: str
) -> np.ndarray:
    """A per-band list of the header (``bbl``, ``wavelength``) as numbers, one per band.

    ``named`` (``'a wavelength list'``), ``counted`` (``'wavelengths'``) and
    ``fix`` (``'wavelength list'``) word the errors.
    """
    try:
        numbers = np.array([float(v) for v in values])
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"ENVI header {header.name} has {named} that is not numbers; fix or remove it"
        ) from exc
    if numbers.size != bands:
        raise InputError(
            f"ENVI header {header.name} lists {numbers.size} {counted} for {bands} bands; "
            f"fix or remove the {fix}"
        )
    return numbers


def read_envi(
    path: str | os.PathLike[str],
    data_file: str | os.PathLike[str] | None = None,
    *,
    drop_bad_bands: bool = True,
):
    """Open an ENVI image and return an :class:`EnviImage`.

    Parameters
    ----------
    path : str or path-like
        The ``.hdr`` header, or the data file with its ``.hdr`` beside it.
    data_file : str or path-like, optional
        The binary file, when its name does not follow the header's.
    drop_bad_bands : bool, default=True
        Drop the bands that ``bbl`` marks bad from ``cube`` (an in-memory
        copy). ``False`` keeps ``cube`` the memory map of every band, and
        ``bad_bands`` says which to leave out (:class:`rednmf.io.lazy.MemmapCube`
        drops them slice by slice).

    Returns
    -------
    EnviImage

    Raises
    ------
    InputError
        If the header is missing, not an ENVI header, incomplete, or does not
        match the size of the data file; or if every band is marked bad.
    """
    import spectral.io.envi as envi

    p = check_file(path)
    header = find_envi_header(p)
    if header is None:
        raise InputError(f"no ENVI header (.hdr) found for {p}; put the .hdr beside the data")
    check_file(header)
    if data_file is not None:
        data = check_file(data_file)
    elif p.suffix.lower() == ".hdr":
        data = find_envi_data(header)
    else:
        data = p
    check_file(data)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = envi.read_envi_header(str(header))
    except Exception as exc:
        raise InputError(
            f"{header} is not a valid ENVI header ({one_line(exc) or 'parse error'}); "
            "it must start with 'ENVI' and hold 'key = value' lines"
        ) from exc
    missing = [
        k for k in ("samples", "lines", "bands", "data type", "interleave") if k not in meta
    ]
    if missing:
        raise InputError(
            f"ENVI header {header.name} lacks {', '.join(repr(m) for m in missing)}; "
            f"add a line 'KEY = VALUE' for {'each' if len(missing) > 1 else 'it'} to the header"
        )
    if "byte order" not in meta:  # GDAL reads such a file as little-endian too
        meta["byte order"] = "0"
        if np.dtype(envi.envi_to_dtype.get(str(meta["data type"]).strip(), "u1")).itemsize > 1:
            warnings.warn(
                f"ENVI header {header.name} has no 'byte order'; reading {data.name} as "
                "little-endian; add 'byte order = 1' to the header if it is big-endian",
                UserWarning,
                stacklevel=2,
            )
    rows = _header_int(meta, "lines", header)
    cols = _header_int(meta, "samples", header)
    bands = _header_int(meta, "bands", header)
    offset = _header_int(meta, "header offset", header) if "header offset" in meta else 0
    if min(rows, cols, bands) < 1 or offset < 0:
        raise InputError(
            f"ENVI header {header.name} gives lines={rows}, samples={cols}, bands={bands}, "
            f"header offset={offset}; sizes must be positive"
        )
    interleave = str(meta["interleave"]).strip().lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise InputError(
            f"ENVI header {header.name} has interleave={meta['interleave']!r}; "
            "it must be bsq, bil or bip"
        )
    byte_order = str(meta["byte order"]).strip()
    if byte_order not in ("0", "1"):
        raise InputError(
            f"ENVI header {header.name} has byte order={byte_order!r}; it must be 0 or 1"
        )
    dtype_code = str(meta["data type"]).strip()
    if dtype_code not in envi.envi_to_dtype or dtype_code in ("6", "9"):
        raise InputError(
            f"ENVI header {header.name} has data type={dtype_code!r}; supported: 1, 2, 3, 4, "
            "5, 12, 13, 14, 15 (real numbers)"
        )
    itemsize = np.dtype(envi.envi_to_dtype[dtype_code]).itemsize
    expected = offset + rows * cols * bands * itemsize
    actual = data.stat().st_size
    if actual != expected:
        raise InputError(
            f"{data.name} holds {actual} bytes but {header.name} describes {expected} "
            f"({rows} lines x {cols} samples x {bands} bands x {itemsize} bytes + {offset}); "
            "fix the header or re-export the image"
        )

    _check_byte_order(data, header, offset, np.dtype(envi.envi_to_dtype[dtype_code]), byte_order)

    dtype = np.dtype(envi.envi_to_dtype[dtype_code]).newbyteorder(
        ">" if byte_order == "1" else "<"
    )
    layout = {"bsq": ((bands, rows, cols), (1, 2, 0)), "bil": ((rows, bands, cols), (0, 2, 1))}
    shape, axes = layout.get(interleave, ((rows, cols, bands), (0, 1, 2)))
    try:
        raw = np.memmap(data, dtype=dtype, mode="r", offset=offset, shape=shape)
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(
            f"cannot read ENVI image {header.name} ({one_line(exc)}); check header and data"
        ) from exc
    cube = raw.transpose(axes)  # (rows, cols, bands), a view of the file

    bad = np.zeros(bands, dtype=bool)
    if "bbl" in meta:
        bbl = _header_band_list(
            meta["bbl"], header, bands, "a bad band list (bbl)", "bbl values", "bbl"
        )
        bad = bbl == 0
        if bad.all():
            raise InputError(f"every band of {header.name} is marked bad (bbl all 0); fix the bbl")

    wavelengths = None
    if "wavelength" in meta:
        wl = _header_band_list(
            meta["wavelength"],
            header,
            bands,
            "a wavelength list",
            "wavelengths",
            "wavelength list",
        )
        wavelengths = wl[~bad]

    nodata = None
    if "data ignore value" in meta:
        try:
            nodata = float(str(meta["data ignore value"]).strip())
        except ValueError as exc:
            raise InputError(
                f"ENVI header {header.name} has data ignore value="
                f"{meta['data ignore value']!r}, not a number; fix it"
            ) from exc

    if bad.any() and drop_bad_bands:
        cube = np.ascontiguousarray(cube[:, :, ~bad])
    units = meta.get("wavelength units")
    return EnviImage(
        cube=cube,
        header=header,
        data_file=data,
        wavelengths=wavelengths,
        wavelength_units=None if units is None else str(units),
        bad_bands=np.flatnonzero(bad),
        nodata=nodata,
        interleave=interleave,
        byte_order="big-endian" if byte_order == "1" else "little-endian",
    )
