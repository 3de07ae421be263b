"""Scenes to detect on: synthetic ones with implanted targets, and the real benchmark scenes.

**Synthetic** (:func:`make_scene`, for tests and the demo). The background
is low-rank and nonnegative: a few smooth endmember spectra mixed by spatially
smooth abundance maps that are nonnegative and sum to one per pixel. A target
spectrum with narrow features outside the background's span is then implanted
at random, well-separated locations, as whole pixels or as sub-pixel mixtures
``x = a * t + (1 - a) * b`` at the given abundances ``a`` (the protocol used
for the synthetic Salinas scene of the paper, §5.2.1). Finally white Gaussian
noise is added.

**Real benchmark scenes** (:func:`load_benchmark`, :func:`list_scenes`,
:func:`data_dir`), MATLAB v5 ``.mat`` files. They are not part of the package:
they are looked up in the folder named by the environment variable
``REDNMF_DATA`` or, failing that, in a ``shared/data/had`` folder in a parent
of the package or of the current directory (the layout ``<work>/main`` =
repository, ``<work>/shared/data/had`` = scenes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Literal, overload

import numpy as np

from rednmf._validation import check_int, check_real
from rednmf.exceptions import InputError

__all__ = [
    "SceneTruth",
    "all_scenes",
    "data_dir",
    "extra_data_dir",
    "list_scenes",
    "load_benchmark",
    "make_scene",
]

#: Pixels kept free of targets along each border of the scene.
_BORDER = 2
#: Free pixels required between two targets (a guard ring around each block).
_GAP = 1


@dataclass(frozen=True)
class SceneTruth:
    """Noise-free components of a scene made by :func:`make_scene`.

    Attributes
    ----------
    background : numpy.ndarray of shape (rows, cols, bands)
        The background before targets and noise were added.
    target : numpy.ndarray of shape (bands,)
        The implanted target spectrum ``t``.
    abundance : numpy.ndarray of shape (rows, cols)
        Target abundance ``a`` of each pixel (0 outside targets); the
        noise-free pixel is ``a * t + (1 - a) * background``.
    endmembers : numpy.ndarray of shape (n_endmembers, bands)
        The background endmember spectra.
    fractions : numpy.ndarray of shape (rows, cols, n_endmembers)
        Background abundances (nonnegative, summing to one per pixel), so
        ``background = fractions @ endmembers``.
    """

    background: np.ndarray
    target: np.ndarray
    abundance: np.ndarray
    endmembers: np.ndarray
    fractions: np.ndarray


def _smooth_spectrum(rng: np.random.Generator, grid: np.ndarray) -> np.ndarray:
    """A smooth positive spectrum: a baseline plus a few broad Gaussian bumps."""
    n_bumps = int(rng.integers(2, 5))
    centres = rng.uniform(-0.1, 1.1, n_bumps)
    widths = rng.uniform(0.08, 0.3, n_bumps)
    heights = rng.uniform(0.2, 1.0, n_bumps)
    bumps = heights[:, None] * np.exp(
        -0.5 * ((grid[None, :] - centres[:, None]) / widths[:, None]) ** 2
    )
    spectrum = rng.uniform(0.05, 0.25) + bumps.sum(axis=0)
    return spectrum * (rng.uniform(0.4, 0.9) / spectrum.max())


def _target_spectrum(rng: np.random.Generator, grid: np.ndarray, bands: int) -> np.ndarray:
    """A target spectrum: a smooth base with one narrow peak and one narrow absorption."""
    base = 0.5 * _smooth_spectrum(rng, grid) + 0.15
    width = max(1.0, bands / 60.0)
    idx = np.arange(bands)
    lo, hi = int(0.1 * bands), max(int(0.1 * bands) + 1, int(0.9 * bands))
    peak, dip = rng.choice(np.arange(lo, hi), size=2, replace=False)
    base = base + 0.35 * np.exp(-0.5 * ((idx - peak) / width) ** 2)
    base = base - 0.6 * base * np.exp(-0.5 * ((idx - dip) / width) ** 2)
    return np.maximum(base, 0.02)


def _background_fractions(
    rng: np.random.Generator, rows: int, cols: int, n_endmembers: int
) -> np.ndarray:
    """Smooth random fields turned into per-pixel fractions by a softmax."""
    from scipy.ndimage import gaussian_filter  # SciPy's import is slow: only when used

    sigma = max(rows, cols) / 10.0
    fields = np.empty((rows, cols, n_endmembers))
    for k in range(n_endmembers):
        field = gaussian_filter(rng.standard_normal((rows, cols)), sigma, mode="reflect")
        fields[..., k] = (field - field.mean()) / (field.std() + 1e-12)
    logits = 2.0 * fields
    logits -= logits.max(axis=2, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=2, keepdims=True)


def _check_sizes(target_size: object) -> tuple[int, ...]:
    if isinstance(target_size, Integral) and not isinstance(target_size, bool):
        sizes: tuple[object, ...] = (target_size,)
    elif isinstance(target_size, Sequence) and not isinstance(target_size, str):
        sizes = tuple(target_size)
    else:
        raise InputError(
            f"target_size must be an integer or a sequence of integers, got {target_size!r}"
        )
    if not sizes:
        raise InputError("target_size is empty; give at least one block side length")
    return tuple(check_int("target_size", s, low=1) for s in sizes)


def _check_abundances(abundances: object) -> tuple[float, ...]:
    if isinstance(abundances, Real) and not isinstance(abundances, bool):
        values: tuple[object, ...] = (abundances,)
    elif isinstance(abundances, Sequence | np.ndarray) and not isinstance(abundances, str):
        values = tuple(np.asarray(abundances, dtype=object).ravel())
    else:
        raise InputError(f"abundances must be a sequence of numbers in (0, 1], got {abundances!r}")
    if not values:
        raise InputError("abundances is empty; give at least one target abundance in (0, 1]")
    return tuple(
        check_real("abundances", v, low=0.0, high=1.0, low_inclusive=False) for v in values
    )


def _place_targets(
    rng: np.random.Generator, rows: int, cols: int, sizes: list[int]
) -> list[tuple[int, int]]:
    """Top-left corners of non-overlapping, separated blocks away from the border."""
    taken = np.zeros((rows, cols), dtype=bool)
    corners: list[tuple[int, int]] = []
    for size in sizes:
        r_hi = rows - _BORDER - size
        c_hi = cols - _BORDER - size
        placed = False
        if r_hi >= _BORDER and c_hi >= _BORDER:
            for _ in range(1000):
                r = int(rng.integers(_BORDER, r_hi + 1))
                c = int(rng.integers(_BORDER, c_hi + 1))
                guard = taken[
                    max(r - _GAP, 0) : r + size + _GAP, max(c - _GAP, 0) : c + size + _GAP
                ]
                if not guard.any():
                    taken[r : r + size, c : c + size] = True
                    corners.append((r, c))
                    placed = True
                    break
        if not placed:
            raise InputError(
                f"could not place {len(sizes)} separated target(s) in a {rows}x{cols} scene; "
                "reduce n_targets or target_size, or enlarge the scene"
            )
    return corners


@overload
def make_scene(
    rows: int = ...,
    cols: int = ...,
    bands: int = ...,
    n_endmembers: int = ...,
    n_targets: int = ...,
    target_size: int | Sequence[int] = ...,
    abundances: float | Sequence[float] = ...,
    noise: float = ...,
    random_state: int | np.random.Generator | None = ...,
    *,
    return_truth: Literal[False] = ...,
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def make_scene(
    rows: int = ...,
    cols: int = ...,
    bands: int = ...,
    n_endmembers: int = ...,
    n_targets: int = ...,
    target_size: int | Sequence[int] = ...,
    abundances: float | Sequence[float] = ...,
    noise: float = ...,
    random_state: int | np.random.Generator | None = ...,
    *,
    return_truth: Literal[True],
) -> tuple[np.ndarray, np.ndarray, SceneTruth]: ...


def make_scene(
    rows: int = 80,
    cols: int = 80,
    bands: int = 100,
    n_endmembers: int = 4,
    n_targets: int = 12,
    target_size: int | Sequence[int] = 1,
    abundances: float | Sequence[float] = (1.0, 0.8, 0.5, 0.3),
    noise: float = 0.005,
    random_state: int | np.random.Generator | None = 0,
    *,
    return_truth: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, SceneTruth]:
    """Make a synthetic hyperspectral scene with implanted anomalous targets.

    Parameters
    ----------
    rows, cols, bands : int
        Size of the cube. The defaults (80 x 80 x 100) keep a full REDNMF fit
        around a second.
    n_endmembers : int
        Number of background endmembers (the rank of the noise-free background).
    n_targets : int
        Number of implanted targets (square blocks of pixels).
    target_size : int or sequence of int
        Side length of each target block in pixels; a sequence is cycled over
        the targets, e.g. ``(1, 1, 2)`` makes every third target a 2 x 2 block.
        With the default ``1`` every target is a single pixel, so the ground
        truth holds exactly ``n_targets`` anomaly pixels.
    abundances : float or sequence of float
        Target abundance ``a`` in (0, 1], cycled over the targets: a pixel of
        a target is ``a * t + (1 - a) * b`` with ``t`` the target spectrum and
        ``b`` the background there. ``a = 1`` is a whole-pixel target; small
        ``a`` gives weak sub-pixel targets that are harder to detect.
    noise : float
        Standard deviation of the white Gaussian noise added to every value
        (the noise-free spectra lie roughly in 0..1).
    random_state : int, numpy.random.Generator or None
        Seed; the same seed gives identical arrays.
    return_truth : bool, default False
        Also return a :class:`SceneTruth` with the noise-free background, the
        target spectrum and the per-pixel target abundance.

    Returns
    -------
    cube : numpy.ndarray of shape (rows, cols, bands), float64
        The scene, nonnegative (clipped at 0 after the noise is added).
    gt : numpy.ndarray of shape (rows, cols), uint8
        Ground truth, 1 at target pixels and 0 elsewhere.
    truth : SceneTruth
        Only if ``return_truth`` is true.

    Raises
    ------
    InputError
        If a parameter is out of range or the targets do not fit in the scene.

    Examples
    --------
    >>> cube, gt = make_scene(rows=40, cols=40, bands=50, n_targets=6)
    >>> cube.shape, int(gt.sum())
    ((40, 40, 50), 6)
    """
    rows = check_int("rows", rows, low=8)
    cols = check_int("cols", cols, low=8)
    bands = check_int("bands", bands, low=10)
    n_endmembers = check_int("n_endmembers", n_endmembers, low=1, high=bands - 1)
    n_targets = check_int("n_targets", n_targets, low=1)
    sizes = _check_sizes(target_size)
    abunds = _check_abundances(abundances)
    noise = check_real("noise", noise, low=0.0)
    if isinstance(random_state, bool) or not (
        random_state is None or isinstance(random_state, Integral | np.random.Generator)
    ):
        raise InputError(
            f"random_state must be an integer, a numpy Generator or None, got {random_state!r}"
        )
    if isinstance(random_state, Integral) and random_state < 0:
        raise InputError(f"random_state must be >= 0, got {random_state}")
    rng = np.random.default_rng(random_state)

    grid = np.linspace(0.0, 1.0, bands)
    endmembers = np.stack([_smooth_spectrum(rng, grid) for _ in range(n_endmembers)])
    fractions = _background_fractions(rng, rows, cols, n_endmembers)
    background = fractions @ endmembers
    target = _target_spectrum(rng, grid, bands)

    target_sizes = [sizes[i % len(sizes)] for i in range(n_targets)]
    corners = _place_targets(rng, rows, cols, target_sizes)
    abundance = np.zeros((rows, cols))
    for i, ((r, c), size) in enumerate(zip(corners, target_sizes, strict=True)):
        abundance[r : r + size, c : c + size] = abunds[i % len(abunds)]

    a = abundance[..., None]
    cube = a * target + (1.0 - a) * background
    if noise > 0:
        cube = np.maximum(cube + noise * rng.standard_normal(cube.shape), 0.0)
    gt = (abundance > 0).astype(np.uint8)
    if return_truth:
        truth = SceneTruth(
            background=background,
            target=target,
            abundance=abundance,
            endmembers=endmembers,
            fractions=fractions,
        )
        return cube, gt, truth
    return cube, gt


# -- the real benchmark scenes ------------------------------------------------

#: Environment variable that overrides the search for the benchmark folder.
ENV_VAR = "REDNMF_DATA"
#: Environment variable naming the folder of the extra scenes (default: ``had-extra``
#: beside the benchmark folder).
EXTRA_ENV_VAR = "REDNMF_DATA_EXTRA"
_RELATIVE = Path("shared", "data", "had")


def _candidates() -> list[Path]:
    starts = [Path(__file__).resolve().parent]
    with contextlib.suppress(OSError):  # the working directory may have been removed
        starts.append(Path.cwd().resolve())
    found: list[Path] = []
    for start in starts:
        for folder in (start, *start.parents):
            found.append(folder / _RELATIVE)
    return found


def data_dir() -> Path:
    """Return the folder holding the benchmark scenes.

    Returns
    -------
    pathlib.Path
        ``$REDNMF_DATA`` if that variable is set and non-empty; otherwise the
        first existing ``shared/data/had`` found walking up from this module
        and then from the current directory (which covers both a ``shared``
        folder beside the repository and one inside it). If none exists, the
        expected location beside the repository is returned anyway, so check
        ``data_dir().is_dir()`` before use.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    candidates = _candidates()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "pyproject.toml").is_file():
            return folder.parent / _RELATIVE
    return candidates[0]


def extra_data_dir() -> Path:
    """The folder of the extra real scenes (other sensors and sites than the paper's ten).

    ``$REDNMF_DATA_EXTRA`` if set and non-empty, else ``had-extra`` beside
    :func:`data_dir`. It may not exist: check ``extra_data_dir().is_dir()``.
    """
    env = os.environ.get(EXTRA_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return data_dir().parent / "had-extra"


def all_scenes() -> list[Path]:
    """The scenes of :func:`data_dir` and :func:`extra_data_dir`, sorted by name.

    The twelve real scenes on which the defaults are chosen (leave one scene
    out) and judged. Raises ``InputError`` if either folder is missing.
    """
    return sorted(list_scenes(data_dir()) + list_scenes(extra_data_dir()), key=lambda p: p.stem)


def _folder(path: str | os.PathLike[str] | None) -> Path:
    folder = data_dir() if path is None else Path(path).expanduser()
    if not folder.is_dir():
        raise InputError(
            f"benchmark folder {folder} not found; set {ENV_VAR} to the folder holding the "
            ".mat scenes"
        )
    return folder


def list_scenes(path: str | os.PathLike[str] | None = None) -> list[Path]:
    """List the ``.mat`` scenes of a benchmark folder.

    Parameters
    ----------
    path : str or path-like, optional
        Folder to list; default :func:`data_dir`.

    Returns
    -------
    list of pathlib.Path
        The ``*.mat`` files, sorted by name.

    Raises
    ------
    InputError
        If the folder does not exist.
    """
    return sorted(_folder(path).glob("*.mat"))


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """A file path as given, or a scene name looked up in :func:`data_dir`."""
    given = Path(name_or_path).expanduser()
    if given.is_file():
        return given
    if given.is_absolute() or len(given.parts) > 1:
        raise InputError(f"scene file {given} not found")
    name = given.name.removesuffix(".mat")
    folder = _folder(None)
    scenes = list_scenes(folder)
    if extra_data_dir().is_dir():
        scenes += list_scenes(extra_data_dir())
    exact = [p for p in scenes if p.stem == name]
    if exact:
        return exact[0]
    # A unique scene whose name is ``name`` plus a provenance tag: "abu-beach-4"
    # finds "abu-beach-4_lren-crop100.mat".
    tagged = [p for p in scenes if p.stem.startswith(name + "_")]
    if len(tagged) == 1:
        return tagged[0]
    names = ", ".join(p.stem for p in scenes) or "none"
    if tagged:
        options = ", ".join(p.stem for p in tagged)
        raise InputError(f"scene name {name!r} is ambiguous ({options}); give the full name")
    raise InputError(f"no scene {name!r} in {folder}; available: {names}")


def load_benchmark(name_or_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a benchmark scene and its ground truth.

    Parameters
    ----------
    name_or_path : str or path-like
        A ``.mat`` file, or the name of a scene in :func:`data_dir` with or
        without ``.mat`` (e.g. ``"abu-airport-1"``). A name may also omit the
        provenance tag after ``_`` when that is unambiguous (``"pavia-centre-100"``).

    Returns
    -------
    cube : numpy.ndarray of shape (rows, cols, bands)
        The variable ``data``, in its stored dtype (uint16, int16 or float64).
    gt : numpy.ndarray of shape (rows, cols), uint8
        Ground truth, 1 = anomaly, binarised as ``> 0``: the 2-D variable whose
        shape is the cube's first two axes, chosen among several by
        :data:`rednmf.io.scene.GT_NAMES` (with a warning).

    Raises
    ------
    InputError
        If the file is missing or unreadable, or lacks the expected variables.
    """
    from rednmf.io import read_scene

    path = _resolve(name_or_path)
    scene = read_scene(path)
    if scene.gt is None:
        raise InputError(
            f"{path.name} has no ground-truth variable of shape {scene.shape[:2]} "
            f"(variables: {', '.join(scene.variables)}); pass a scene with ground truth"
        )
    return scene.cube, scene.gt.astype(np.uint8)
