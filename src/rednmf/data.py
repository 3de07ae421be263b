"""Locate and read the real benchmark scenes (MATLAB v5 ``.mat`` files).

The scenes are not part of the package. They are looked up in the folder
named by the environment variable ``REDNMF_DATA`` or, failing that, in a
``shared/data/had`` folder in a parent of the package or of the current
directory (the layout ``<work>/main`` = repository, ``<work>/shared/data/had``
= scenes).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from rednmf.exceptions import InputError
from rednmf.io import read_scene

__all__ = ["all_scenes", "data_dir", "extra_data_dir", "list_scenes", "load_benchmark"]

#: Environment variable that overrides the search for the benchmark folder.
ENV_VAR = "REDNMF_DATA"
#: Environment variable naming the folder of the extra scenes (default: ``had-extra``
#: beside the benchmark folder).
EXTRA_ENV_VAR = "REDNMF_DATA_EXTRA"
_RELATIVE = Path("shared", "data", "had")
_GT_NAMES = ("map", "groundtruth", "gt")


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
        Ground truth, 1 = anomaly: the 2-D variable among ``map``,
        ``groundtruth`` and ``gt`` whose shape is the cube's first two axes,
        binarised as ``> 0``.

    Raises
    ------
    InputError
        If the file is missing or unreadable, or lacks the expected variables.
    """
    path = _resolve(name_or_path)
    scene = read_scene(path, prefer_gt=_GT_NAMES)
    if scene.gt is None:
        raise InputError(
            f"{path.name} has no ground-truth variable of shape {scene.shape[:2]} "
            f"(variables: {', '.join(scene.variables)}); pass a scene with ground truth"
        )
    return scene.cube, scene.gt.astype(np.uint8)
