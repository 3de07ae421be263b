"""What a cube looks like: the composite of a run's overview and report (NumPy only).

True colour from the bands nearest 640, 550 and 460 nm when the wavelengths cover them,
otherwise the first three principal components; each channel stretched to its 2nd-98th
percentiles. The principal axes and the row-by-row sampling of spectra are shared with the
report's spectra codes. Everything here works on NumPy arrays (or cubes read on demand,
row block by row block) and imports nothing heavier than NumPy and threadpoolctl, so the
pipeline can take what its writes need of the cube, then free the cube, before Pillow and
the GIS libraries are imported.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "composite_title",
    "nanometres",
    "principal_axes",
    "rgb8",
    "sample_spectra",
    "scene_rgb",
    "stretch",
    "true_colour_bands",
]


#: Target wavelengths (nm) of the red, green and blue channels of a true-colour composite.
_RGB_NM = (640.0, 550.0, 460.0)


def nanometres(wavelengths: np.ndarray) -> np.ndarray:
    """Wavelengths in nm (micrometres, recognised by values under 50, are converted)."""
    wl = np.asarray(wavelengths, dtype=np.float64)
    return wl * 1000.0 if np.nanmax(wl) < 50.0 else wl  # micrometres -> nm


def stretch(channel: np.ndarray) -> np.ndarray:
    """``channel`` clipped to its 2nd-98th percentiles and scaled to [0, 1] (a new array)."""
    finite = channel[np.isfinite(channel)]
    if finite.size == 0:
        return np.zeros_like(channel)
    lo, hi = np.percentile(finite, [2.0, 98.0])
    del finite
    if hi <= lo:
        hi = lo + 1.0
    out = np.nan_to_num(channel, nan=lo)  # one copy, in the channel's precision; then in place
    out -= lo
    out /= hi - lo
    return np.clip(out, 0.0, 1.0, out=out)


def scene_rgb(
    cube: object,
    wavelengths: np.ndarray | None = None,
    *,
    valid: np.ndarray | None = None,
    max_fit_pixels: int = 50_000,
) -> np.ndarray:
    """A false-colour composite of a cube, each channel stretched to [0, 1].

    With wavelengths covering the visible range (each of 640, 550 and 460 nm
    within 30 nm of a band) the nearest bands make a true-colour image;
    otherwise the first three principal components (fitted on at most
    ``max_fit_pixels`` valid pixels) are shown as red, green and blue. Each
    channel is clipped to its 2nd-98th percentiles; no-data pixels are black.

    Parameters
    ----------
    cube : array-like of shape (rows, cols, bands)
        Any cube :func:`rednmf.io.read_scene` returns (lazy cubes are read in
        row blocks).
    wavelengths : array-like of shape (bands,), optional
        Band centres in nm (or micrometres, recognised by their size).
    valid : array-like of shape (rows, cols), optional
        The pixels with data.
    max_fit_pixels : int
        Pixels sampled for the principal components.

    Returns
    -------
    numpy.ndarray of shape (rows, cols, 3), float32 in [0, 1]
        A display image: float32 (12 MB at 10^6 pixels), every step in place.
    """
    rows, cols, bands = (int(n) for n in cube.shape)  # type: ignore[attr-defined]
    ok = np.ones((rows, cols), bool) if valid is None else np.asarray(valid, bool)
    idx = true_colour_bands(wavelengths, bands)
    step = max(1, (1 << 22) // max(cols * bands, 1))  # ~16 MB of float32 per block
    if idx is not None:
        img = np.asarray(cube[:, :, idx], dtype=np.float32)  # type: ignore[index]
    else:
        flat = np.flatnonzero(ok.ravel())
        pick = flat[:: max(1, flat.size // max_fit_pixels)]
        sample = sample_spectra(cube, pick, rows, cols)
        mean, basis = principal_axes(sample, 3)
        axes = basis.T.astype(np.float32)
        shift = (mean @ basis.T).astype(np.float32)
        img = np.zeros((rows, cols, 3), dtype=np.float32)
        for r0 in range(0, rows, step):
            # float32 (no copy of a float32 cube's block): a display image, not a result
            block = np.asarray(cube[r0 : r0 + step], dtype=np.float32)  # type: ignore[index]
            proj = block.reshape(-1, bands) @ axes - shift
            img[r0 : r0 + step, :, : proj.shape[1]] = proj.reshape(block.shape[0], cols, -1)
            if proj.shape[1] < 3:
                img[r0 : r0 + step, :, proj.shape[1] :] = img[r0 : r0 + step, :, :1]
    img[~np.isfinite(img)] = np.nan
    img[~ok] = np.nan
    for c in range(3):
        img[:, :, c] = stretch(img[:, :, c])
    img[~ok] = 0.0
    return img


def principal_axes(sample: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the first ``k`` principal axes (rows, unit length) of a sample of spectra.

    From the eigenvectors of the ``bands x bands`` scatter matrix, not an SVD
    of the sample: a few milliseconds for 20 000 spectra of 200 bands. With
    fewer than 3 spectra, the first band alone.

    Parameters
    ----------
    sample : numpy.ndarray of shape (n, bands)
        Finite spectra.
    k : int
        Axes wanted (at most ``bands``).

    Returns
    -------
    mean : numpy.ndarray of shape (bands,)
    axes : numpy.ndarray of shape (min(k, bands), bands)
        In decreasing order of variance.
    """
    bands = sample.shape[1]
    mean = sample.mean(axis=0, dtype=np.float64) if sample.shape[0] else np.zeros(bands)
    if sample.shape[0] < 3:
        return mean, np.eye(bands)[:1]
    from rednmf._blas import one_blas_thread
    from rednmf.scoring.pca import principal_axes as leading_eigenvectors

    # a bands x bands problem: threads only wait for each other (0.03 s on one thread
    # against 1-2 s on two busy cores, measured at 10^4 x 205); the scatter summed over
    # blocks of 4096 centred spectra, in float64 (no centred copy of the whole sample)
    scatter = np.zeros((bands, bands))
    with one_blas_thread():
        for r0 in range(0, sample.shape[0], 4096):
            centred = sample[r0 : r0 + 4096] - mean
            scatter += centred.T @ centred
    # the sign of each axis fixed as the scorers' (its largest entry positive)
    return mean, leading_eigenvectors(scatter, min(k, bands)).T


def sample_spectra(cube: object, pick: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The finite spectra among those at the sorted flat indices ``pick``, in that order.

    In the cube's precision when it is float32 (float64 otherwise): 50 000 spectra of 200
    bands are 40 MB, not 80. A spectrum with a NaN or infinite value is left out. A cube in
    memory is indexed at once; a cube read on demand one image row at a time.
    """
    r_idx, c_idx = np.unravel_index(pick, (rows, cols))
    bands = int(cube.shape[2])  # type: ignore[attr-defined]
    dtype = np.float32 if getattr(cube, "dtype", None) == np.float32 else np.float64
    if type(cube) is np.ndarray:
        out = np.asarray(cube[r_idx, c_idx], dtype=dtype)
    else:
        parts = []
        for r in np.unique(r_idx):
            line = np.asarray(cube[int(r)], dtype=dtype)  # type: ignore[index]
            parts.append(line[c_idx[r_idx == r]])
        out = np.concatenate(parts, axis=0) if parts else np.zeros((0, bands), dtype)
    ok = np.all(np.isfinite(out), axis=1)
    return out if ok.all() else out[ok]


def true_colour_bands(wavelengths: np.ndarray | None, bands: int) -> list[int] | None:
    """The bands nearest 640, 550 and 460 nm when each is within 30 nm, else None."""
    if wavelengths is None or len(wavelengths) != bands:
        return None
    wl = nanometres(np.asarray(wavelengths))
    near = [int(np.nanargmin(np.abs(wl - t))) for t in _RGB_NM]
    if all(abs(wl[i] - t) <= 30.0 for i, t in zip(near, _RGB_NM, strict=True)):
        return near
    return None


def composite_title(wavelengths: np.ndarray | None, bands: int) -> str:
    """What :func:`scene_rgb` shows for these wavelengths: true colour or PCA false colour."""
    idx = true_colour_bands(wavelengths, bands)
    if idx is None:
        return "false colour (PCA 1-3 as RGB)"
    wl = nanometres(np.asarray(wavelengths))
    return "true colour (" + "/".join(f"{wl[i]:.0f}" for i in idx) + " nm)"


def rgb8(image: np.ndarray) -> np.ndarray:
    """An RGB image in [0, 1] (NaN = 0) as 8 bits a channel, one channel at a time.

    Parameters
    ----------
    image : numpy.ndarray of shape (rows, cols, 3 or more)
        Values in [0, 1]; outside it they are clipped, NaN becomes 0.

    Returns
    -------
    numpy.ndarray of shape (rows, cols, 3), uint8
    """
    out = np.empty((*image.shape[:2], 3), dtype=np.uint8)
    for c in range(3):
        channel = np.nan_to_num(image[:, :, c], nan=0.0)
        channel *= 255.0
        np.clip(channel, 0.0, 255.0, out=channel)
        out[:, :, c] = np.round(channel, out=channel)
    return out
