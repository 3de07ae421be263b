"""Read ENVI ``.hdr`` + binary images with Spectral Python (memory-mapped).

The header gives the size, data type, interleave (BSQ, BIL or BIP), byte
order, header offset and optionally ``wavelength``, ``bbl`` (bad band list:
0 = bad, dropped here) and ``data ignore value`` (no-data). The georeference
(``map info`` / ``coordinate system string``) is read through GDAL's ENVI
driver when it can be (:func:`rednmf.io.geotiff.read_georef`).

Every failure a user can cause is an :class:`~rednmf.exceptions.InputError`
with a one-line message.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rednmf.exceptions import InputError, one_line
from rednmf.io.mat import check_file

__all__ = ["EnviImage", "read_envi", "find_envi_header", "DATA_SUFFIXES"]

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


def _find_data_file(header: Path) -> Path:
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


def _roughness(values: np.ndarray) -> float:
    """Median step between consecutive values over their interquartile range (inf if flat)."""
    v = values.astype(np.float64)
    ok = np.isfinite(v[:-1]) & np.isfinite(v[1:])
    if ok.sum() < 16:
        return np.inf
    steps = np.abs(np.diff(v))[ok]
    finite = v[np.isfinite(v)]
    q1, q3 = np.percentile(finite, [25, 75])
    if q3 <= q1:
        return np.inf
    return float(np.median(steps)) / float(q3 - q1)


#: Values read from the data file for the byte-order check.
_BYTE_ORDER_SAMPLE = 65536


def _check_byte_order(
    data: Path, header: Path, offset: int, dtype: np.dtype, byte_order: str
) -> None:
    """Refuse data whose declared byte order is implausible.

    Natural images are smooth along the file (neighbouring pixels or bands); read
    with the wrong byte order they become noise (and floats spread over dozens
    of decades). The check reads one block from the middle of the file both
    ways and raises when the other order is more than three times smoother, or
    when the declared one gives non-finite or denormal floats that the other
    does not.
    """
    if dtype.itemsize == 1:
        return
    n_items = (data.stat().st_size - offset) // dtype.itemsize
    count = int(min(n_items, _BYTE_ORDER_SAMPLE))
    if count < 64:
        return
    start = offset + ((n_items - count) // 2) * dtype.itemsize
    declared = dtype.newbyteorder("<" if byte_order == "0" else ">")
    other = declared.newbyteorder("S")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = np.fromfile(data, dtype=declared, count=count, offset=start)
        b = np.fromfile(data, dtype=other, count=count, offset=start)
        if dtype.kind == "f":
            tiny = np.finfo(dtype).tiny

            def odd(x: np.ndarray) -> float:
                with np.errstate(invalid="ignore", over="ignore"):
                    return float(np.mean(~np.isfinite(x) | ((x != 0) & (np.abs(x) < tiny))))

            odd_a, odd_b = odd(a), odd(b)
            suspicious = odd_a > 0.05 and odd_b < 0.01
        else:
            suspicious = False
        ra, rb = _roughness(a), _roughness(b)
    if suspicious or (np.isfinite(rb) and rb * 3.0 < ra):
        declared_name = "little-endian" if byte_order == "0" else "big-endian"
        fix = "1" if byte_order == "0" else "0"
        raise InputError(
            f"{data.name} does not look {declared_name} as {header.name} says (byte order = "
            f"{byte_order}): read the other way its values are smooth; set 'byte order = "
            f"{fix}' in the header if the file was written on a machine of that byte order"
        )


def _header_int(meta: dict[str, object], key: str, header: Path) -> int:
    try:
        value = int(str(meta[key]).strip())
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"ENVI header {header.name} has no valid {key!r} ({meta.get(key)!r}); fix the header"
        ) from exc
    return value


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
        data = _find_data_file(header)
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
        k
        for k in ("samples", "lines", "bands", "data type", "interleave", "byte order")
        if k not in meta
    ]
    if missing:
        raise InputError(
            f"ENVI header {header.name} lacks {', '.join(repr(m) for m in missing)}; "
            "add them to the header"
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

    try:
        logging.getLogger("spectral").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = envi.open(str(header), str(data))
            cube = img.open_memmap(interleave="bip", writable=False)
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(
            f"cannot read ENVI image {header.name} ({one_line(exc)}); check header and data"
        ) from exc

    bad = np.zeros(bands, dtype=bool)
    if "bbl" in meta:
        try:
            bbl = np.array([float(b) for b in img.metadata["bbl"]])
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"ENVI header {header.name} has a bad band list (bbl) that is not numbers; "
                "fix or remove it"
            ) from exc
        if bbl.size != bands:
            raise InputError(
                f"ENVI header {header.name} lists {bbl.size} bbl values for {bands} bands; "
                "fix or remove the bbl"
            )
        bad = bbl == 0
        if bad.all():
            raise InputError(f"every band of {header.name} is marked bad (bbl all 0); fix the bbl")

    wavelengths = None
    if "wavelength" in meta:
        try:
            wl = np.array([float(w) for w in img.metadata["wavelength"]])
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"ENVI header {header.name} has a wavelength list that is not numbers; "
                "fix or remove it"
            ) from exc
        if wl.size != bands:
            raise InputError(
                f"ENVI header {header.name} lists {wl.size} wavelengths for {bands} bands; "
                "fix or remove the wavelength list"
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
